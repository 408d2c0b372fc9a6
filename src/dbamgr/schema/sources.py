"""Where a schema comes from, for ``dbamgr schema diff A B``.

A source is one of: a database URL (``postgresql://…`` or ``key=value`` pairs);
the name of a configured environment, or ``local`` for the project's server; a
snapshot file written by ``dbamgr schema dump --json``; or
``migrations@VERSION`` (``migrations@latest``, or plain ``migrations``): the
schema the project's migrations up to VERSION build on a scratch database
(``migrations@0``: none of them, as ``dbamgr down --to 0`` leaves it).
"""

from __future__ import annotations

import os
from pathlib import Path

from dbamgr.config import Project
from dbamgr.db import connect
from dbamgr.errors import UsageError
from dbamgr.log import mask_url
from dbamgr.schema.snapshot import Snapshot, take_snapshot
from dbamgr.target import LOCAL, resolve_target

MIGRATIONS = "migrations"


def _excluded(project: Project | None) -> tuple[str, ...]:
    return (project.config.migrations.history_schema if project else "dbamgr",)


def snapshot_url(url: str, project: Project | None = None) -> Snapshot:
    """The schema of the database at *url*."""
    with connect(url, purpose="schema") as conn:
        return take_snapshot(conn, exclude_schemas=_excluded(project))


def snapshot_migrations(
    project: Project, version: str | None, server_url: str | None = None
) -> Snapshot:
    """The schema the migrations up to *version* (all if None) build."""
    from dbamgr.migrations.scratch import apply_migrations, scratch_target
    from dbamgr.migrations.source import load_migrations, parse_version

    source = load_migrations(project.migrations_dir)
    chosen = source.migrations
    if version is not None:
        limit = parse_version(version)
        if limit != 0 and limit not in source.by_version:
            raise UsageError(
                f"migrations@{version}: no migration has that version",
                hint="run `dbamgr status` to see the versions, or use 0 for none",
            )
        chosen = [m for m in chosen if m.version <= limit]
    with scratch_target(
        project, server_url, prefix="dbamgr_schema", migrations=chosen
    ) as target:
        session = apply_migrations(project, target, chosen)
        try:
            return take_snapshot(session.conn, exclude_schemas=_excluded(project))
        finally:
            session.close()


def resolve_source(
    spec: str, project: Project | None, *, server_url: str | None = None
) -> tuple[Snapshot, str]:
    """The snapshot *spec* names, and a label for it (URLs masked)."""
    if spec == MIGRATIONS or spec.startswith(f"{MIGRATIONS}@"):
        if project is None:
            raise UsageError(f'"{spec}" needs a project: run it inside one, or use -C')
        version = spec.partition("@")[2] or None
        if version == "latest":
            version = None
        return snapshot_migrations(project, version, server_url), spec
    if "://" in spec or "=" in spec:
        return snapshot_url(spec, project), mask_url(spec)
    path = Path(spec)
    if path.suffix == ".json" or path.is_file():
        return Snapshot.load(path), spec
    if project is not None and (spec == LOCAL or spec in project.config.environments):
        environ = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        target = resolve_target(
            project, None if spec == LOCAL else spec, environ=environ
        )
        return snapshot_url(target.url, project), f"{spec} ({target.display})"
    known = sorted(project.config.environments) if project else []
    raise UsageError(
        f'cannot tell what "{spec}" is',
        hint="give a database URL, an environment name ("
        + ", ".join([LOCAL, *known])
        + "), a snapshot .json file, or migrations@VERSION",
    )
