"""What every command shares: the project, the target, the output mode."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import click
from click.decorators import FC

from dbamgr.config import Project, find_project, load_project
from dbamgr.target import Target, resolve_target


@dataclass
class AppContext:
    """Global options, and the project and target resolved once, on demand."""

    project_dir: Path | None = None
    env: str | None = None
    debug: bool = False
    json: bool = False
    _project: Project | None = field(default=None, repr=False)

    @property
    def project(self) -> Project:
        if self._project is None:
            if self.project_dir is not None:
                self._project = load_project(self.project_dir)
            else:
                self._project = find_project()
        return self._project

    @property
    def known_project(self) -> Project | None:
        """The project if it was loaded already (for the error log)."""
        return self._project

    def target(self, *, start_local: bool = True) -> Target:
        return resolve_target(self.project, self.env, start_local=start_local)


pass_app = click.make_pass_decorator(AppContext, ensure=True)


def json_option(func: click.decorators.FC) -> click.decorators.FC:
    """``--json``: print the result as JSON on standard output."""

    def callback(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
        if value:
            ctx.ensure_object(AppContext).json = True
        return value

    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        expose_value=True,
        callback=callback,
        help="Print the result as JSON.",
    )(func)


def server_option(help_text: str) -> Callable[[FC], FC]:
    """``--server URL``: where to make scratch databases. A URL libpq cannot
    read is a configuration error, named as the option's."""

    def callback(
        _ctx: click.Context, _param: click.Parameter, value: str | None
    ) -> str | None:
        if value is not None:
            from dbamgr.db.connect import check_url

            check_url(value, "--server")
        return value

    return click.option(
        "--server", "server_url", metavar="URL", help=help_text, callback=callback
    )
