"""``dbamgr init``."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from dbamgr.cli._context import AppContext, json_option, pass_app
from dbamgr.cli._output import console, emit_json, styled
from dbamgr.project import init_project


@click.command()
@click.argument(
    "directory", required=False, type=click.Path(file_okay=False, path_type=Path)
)
@json_option
@pass_app
def init(app: AppContext, directory: Path | None, as_json: bool) -> None:
    """Create a project: dbamgr.toml, migrations/, seeds/, and ignore .dbamgr/.

    DIRECTORY defaults to the -C directory or the current one. Files that exist
    already are kept.
    """
    root = directory or app.project_dir or Path.cwd()
    report = init_project(root)
    if as_json:
        emit_json(report)
        return
    for name in report.created:
        console.print(styled(("created", "green"), f" {name}"))
    for name in report.existing:
        console.print(styled(("kept", "dim"), f"    {name}"))
    dbamgr = "dbamgr" if _is_cwd(root) else f"dbamgr -C {shlex.quote(str(root))}"
    console.print(
        styled(
            "\nnext: ",
            (f"{dbamgr} new create_first_table", "bold"),
            ", edit its up.sql and down.sql, then ",
            (f"{dbamgr} up", "bold"),
        )
    )


def _is_cwd(directory: Path) -> bool:
    """Whether *directory* is the current one (then commands need no -C)."""
    try:
        return directory.resolve() == Path.cwd().resolve()
    except OSError:
        return False
