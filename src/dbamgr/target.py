"""Which database a command acts on.

The order: ``DATABASE_URL`` if set; else the environment named by ``--env`` or
``DBAMGR_ENV`` (its ``url``, or the variable its ``url_env`` names); else the
project's local server, started on demand. An environment chosen by name keeps its
``protected`` flag and timeouts even when ``DATABASE_URL`` overrides its URL.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass

from dbamgr.config import CONFIG_FILE, PYPROJECT_FILE, Project
from dbamgr.errors import ConfigError
from dbamgr.log import mask_url

logger = logging.getLogger(__name__)

ENV_VAR = "DBAMGR_ENV"
URL_VAR = "DATABASE_URL"
LOCAL = "local"


@dataclass(frozen=True)
class Target:
    """A database to act on, and how carefully."""

    name: str
    url: str
    protected: bool = False
    local: bool = False
    lock_timeout: float | None = None
    statement_timeout: float | None = None

    @property
    def display(self) -> str:
        """The URL with its password masked, for output and logs."""
        return mask_url(self.url)

    def __str__(self) -> str:
        return f"{self.name} ({self.display})"


def _unknown_environment(project: Project, name: str) -> ConfigError:
    """The error for ``--env NAME`` when the configuration has no such section."""
    file = project.config_file
    in_pyproject = file is not None and file.name == PYPROJECT_FILE
    table = f"[{'tool.dbamgr.' if in_pyproject else ''}environments.{name}]"
    add = f"add {table} to {file.name if file else CONFIG_FILE}"
    known = sorted(project.config.environments)
    if known:
        hint = f"use one of: {', '.join(known)}; or {add}"
    else:
        hint = f"no environment is configured: {add}"
    return ConfigError(
        f'no environment "{name}" in {file or CONFIG_FILE}',
        hint=hint,
        environment=name,
    )


def resolve_target(
    project: Project,
    env_name: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    start_local: bool = True,
) -> Target:
    """Resolve the target database of *project* (see the module's docstring).

    With no URL configured, the project's local server is started if needed
    (unless *start_local* is false) and its project database created.
    """
    from dbamgr.db.connect import check_url

    environ = os.environ if environ is None else environ
    env_name = env_name or environ.get(ENV_VAR) or None
    override = environ.get(URL_VAR) or None

    if env_name is not None:
        environments = project.config.environments
        env = environments.get(env_name)
        if env is None:
            raise _unknown_environment(project, env_name)
        url = override or env.url
        section = f"[environments.{env_name}]"
        origin = URL_VAR if override else f"the url of {section}"
        if url is None and env.url_env is not None:
            origin = f"${env.url_env} (for {section})"
            url = environ.get(env.url_env) or None
            if url is None:
                raise ConfigError(
                    f'environment "{env_name}" takes its URL from ${env.url_env}, '
                    "which is not set",
                    hint=f"export {env.url_env}=postgresql://…, or set DATABASE_URL",
                    environment=env_name,
                )
        assert url is not None
        check_url(url, origin)
        return Target(
            env_name,
            url,
            protected=env.protected,
            lock_timeout=env.lock_timeout,
            statement_timeout=env.statement_timeout,
        )

    if override is not None:
        check_url(override, URL_VAR)
        return Target(URL_VAR, override)

    from dbamgr.server import project_cluster

    cluster = project_cluster(project)
    if start_local:
        if not cluster.running:
            logger.info("starting the local server in %s", cluster.directory)
        cluster.start()
        url = cluster.ensure_database(project.database_name)
    else:
        url = cluster.url(project.database_name)
    return Target(LOCAL, url, local=True)
