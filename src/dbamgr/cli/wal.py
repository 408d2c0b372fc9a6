"""``dbamgr wal`` (archive_command and restore_command) and ``dbamgr archive``."""

from __future__ import annotations

import sys

import click

from dbamgr.backup import archive, walcli
from dbamgr.backup.repository import project_repository
from dbamgr.cli._context import AppContext, json_option, pass_app
from dbamgr.cli._output import console, emit_json, format_time, styled
from dbamgr.server import project_cluster

repo_option = click.option(
    "--repo",
    type=click.Path(file_okay=False),
    help="The repository (default: [backup] repository of the project).",
)


@click.group()
def wal() -> None:
    """Archive and restore WAL files (for archive_command and restore_command)."""


@wal.command(name="push")
@repo_option
@click.option(
    "--compress",
    type=click.Choice(["none", "zstd", "gzip"]),
    default="none",
    show_default=True,
    help="Compress the archived file.",
)
@click.argument("path")
@click.argument("name")
def push_command(repo: str | None, compress: str, path: str, name: str) -> None:
    """Archive WAL file PATH as NAME: archive_command = 'dbamgr wal push %p %f'.

    A file archived already with the same content is a success; different
    content is an error.
    """
    sys.exit(walcli.push(path, name, repo=repo, compression=compress))


@wal.command(name="fetch")
@repo_option
@click.argument("name")
@click.argument("path")
def fetch_command(repo: str | None, name: str, path: str) -> None:
    """Restore archived WAL NAME to PATH: restore_command = 'dbamgr wal fetch %f %p'.

    Exits with 1 when the file is not archived (recovery then ends normally) and
    with 126 on any other error (which stops recovery rather than end it early).
    """
    sys.exit(walcli.fetch(name, path, repo=repo))


@click.group(name="archive")
def archive_group() -> None:
    """Set up and watch WAL archiving into the repository."""


@archive_group.command(name="enable")
@json_option
@pass_app
def enable_command(app: AppContext, as_json: bool) -> None:
    """Configure WAL archiving into the repository.

    The project's local server is configured (and restarted if needed); for any
    other server, the settings to apply are printed.
    """
    project = app.project
    settings = project.config.backup
    target = app.target()
    repo = project_repository(project, create=True)
    cluster = project_cluster(project) if target.local else None
    setup = archive.enable_archiving(
        target.url,
        repo.path or project.backup_repository,
        cluster=cluster,
        compression=settings.wal_compression,
        timeout=settings.archive_timeout,
    )
    if as_json:
        emit_json(setup)
        return
    if setup.applied:
        restarted = " (server restarted)" if setup.restarted else ""
        console.print(f"archiving into {setup.repository}{restarted}")
        return
    console.print(
        f"{setup.target} is not the project's local server: set these in its "
        "postgresql.conf (dbamgr must be installed on that host, with the "
        "repository reachable there), then restart it:\n"
    )
    for name, value in setup.settings.items():
        quoted = value.replace("'", "''")
        click.echo(f"{name} = '{quoted}'")


@archive_group.command(name="status")
@json_option
@pass_app
def status_command(app: AppContext, as_json: bool) -> None:
    """Show pg_stat_archiver, the WAL not yet archived, and the repository's newest.

    Exits with 1 when archiving is off or failing.
    """
    project = app.project
    try:
        repo = project_repository(project)
    except Exception:
        repo = None
    status = archive.archive_status(app.target().url, repo)
    if as_json:
        emit_json({"healthy": status.healthy, **_fields(status)})
    else:
        state = ("healthy", "green") if status.healthy else ("unhealthy", "red")
        mode = f" (archive_mode = {status.archive_mode})"
        console.print(styled("archiving:      ", state, mode))
        console.print(
            f"last archived:  {status.last_archived_wal or '-'} "
            f"at {format_time(status.last_archived_time) or '-'}"
        )
        failures = f"failures:       {status.failed_count}"
        if status.last_failed_wal:
            when = format_time(status.last_failed_time)
            failures += f", last {status.last_failed_wal} at {when}"
        console.print(failures)
        console.print(f"current WAL:    {status.current_wal or '-'}")
        lag = (
            "-" if status.lag_segments is None else f"{status.lag_segments} segment(s)"
        )
        if status.lag_seconds is not None:
            lag += f", {status.lag_seconds:.0f}s since the last archived file"
        console.print(f"lag:            {lag}")
        console.print(f"repository:     newest {status.repository_newest or '-'}")
        for problem in status.problems:
            console.print(styled(("problem:", "red"), f" {problem}"))
    if not status.healthy:
        sys.exit(1)


def _fields(status: archive.ArchiveStatus) -> dict[str, object]:
    from dataclasses import fields

    return {f.name: getattr(status, f.name) for f in fields(status)}
