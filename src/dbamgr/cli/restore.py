"""``dbamgr restore`` (point in time), ``restore logical`` and ``restore-point``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from dbamgr.backup import logical
from dbamgr.backup.repository import (
    RestorePoint,
    check_restore_point_name,
    project_repository,
)
from dbamgr.backup.restore import restore_backup
from dbamgr.backup.target import RestoreTarget
from dbamgr.backup.walnames import parse_lsn
from dbamgr.cli._context import AppContext, json_option, pass_app
from dbamgr.cli._output import console, emit_json
from dbamgr.cli._progress import progress_bar
from dbamgr.db.connect import connect
from dbamgr.errors import UsageError
from dbamgr.server import find_binaries


def parse_time(value: str | None) -> datetime | None:
    """Read a --to-time value: ISO 8601, local time when it has no offset."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace(" ", "T", 1))
    except ValueError:
        raise UsageError(
            f'"{value}" is not a time',
            hint="write it as 2026-12-03T18:53:01+00:00 (no offset: local time)",
        ) from None
    return moment if moment.tzinfo else moment.astimezone()


def _target(
    to_time: str | None, to_lsn: str | None, to_name: str | None, latest: bool
) -> RestoreTarget:
    chosen = [x for x in (to_time, to_lsn, to_name) if x] + (
        ["latest"] if latest else []
    )
    if len(chosen) != 1:
        raise UsageError(
            "give exactly one of --to-time, --to-lsn, --to-name and --latest"
        )
    if to_lsn is not None:
        try:
            parse_lsn(to_lsn)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    return RestoreTarget(time=parse_time(to_time), lsn=to_lsn, name=to_name)


@click.group(name="restore", invoke_without_command=True)
@click.option("--to-time", metavar="TIME", help="Recover up to this moment.")
@click.option("--to-lsn", metavar="LSN", help="Recover up to this WAL position.")
@click.option("--to-name", metavar="NAME", help="Recover up to this restore point.")
@click.option("--latest", is_flag=True, help="Recover all the archived WAL.")
@click.option("--backup", "backup_id", metavar="ID", help="Start from this backup.")
@click.option(
    "--target-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The new data directory (empty or absent).",
)
@click.option(
    "--start",
    is_flag=True,
    help="Start it on a free port, wait for the target, promote it, print its URL.",
)
@click.option(
    "--keep-archiving",
    is_flag=True,
    help="Let the restored server archive into the repository once promoted.",
)
@json_option
@pass_app
@click.pass_context
def restore_group(
    ctx: click.Context,
    app: AppContext,
    to_time: str | None,
    to_lsn: str | None,
    to_name: str | None,
    latest: bool,
    backup_id: str | None,
    target_dir: Path | None,
    start: bool,
    keep_archiving: bool,
    as_json: bool,
) -> None:
    """Restore a base backup and its WAL to a point in time into a new directory.

    The newest backup that ends before the target is used. A target the
    archived WAL cannot reach is an error, never an earlier state.
    """
    if ctx.invoked_subcommand is not None:
        return
    target = _target(to_time, to_lsn, to_name, latest)
    if target_dir is None:
        raise UsageError("--target-dir is required", hint="give an empty directory")
    project = app.project
    with progress_bar(app) as show:
        result, _cluster = restore_backup(
            project_repository(project),
            find_binaries(project.config.server.bin_dir),
            target_dir,
            target,
            backup_id=backup_id,
            start=start,
            keep_archiving=keep_archiving,
            run_as=project.config.server.run_as,
            on_progress=show,
        )
    if as_json:
        emit_json(result)
        return
    console.print(
        f"restored backup {result.backup} into {result.target_dir} "
        f"({result.target}, timeline {result.timeline}) in {result.seconds:.1f}s"
    )
    if result.started:
        console.print(f"promoted and running: {result.url}")
        console.print(f"log: {result.log_file}")
    else:
        console.print(
            "start it with pg_ctl -D DIR start: it recovers to the target and "
            "pauses there (SELECT pg_wal_replay_resume() to promote)"
        )


@restore_group.command(name="logical")
@click.argument("backup_id", required=False)
@click.option("--database", help="Restore only this database.")
@click.option("--into", help="Restore it under this new name.")
@click.option("--globals", "with_globals", is_flag=True, help="Restore roles first.")
@click.option("--jobs", type=int, help="Parallel restore jobs.")
@json_option
@pass_app
def restore_logical_command(
    app: AppContext,
    backup_id: str | None,
    database: str | None,
    into: str | None,
    with_globals: bool,
    jobs: int | None,
    as_json: bool,
) -> None:
    """Restore a logical backup (default: the newest) into new databases."""
    project = app.project
    with progress_bar(app) as show:
        result = logical.restore_logical(
            project_repository(project),
            app.target().url,
            find_binaries(project.config.server.bin_dir),
            backup_id=backup_id,
            database=database,
            into=into,
            jobs=jobs or project.config.backup.jobs,
            with_globals=with_globals,
            on_progress=show,
        )
    if as_json:
        emit_json(result)
        return
    for source, name in result.databases.items():
        console.print(f"restored {source} as {name} from {result.backup}")


@click.command(name="restore-point")
@click.argument("name")
@json_option
@pass_app
def restore_point_command(app: AppContext, name: str, as_json: bool) -> None:
    """Create a named restore point (pg_create_restore_point) and record it."""
    check_restore_point_name(name)
    repo = project_repository(app.project)
    with connect(app.target().url, purpose="restore point") as conn:
        row = conn.execute(
            "SELECT pg_create_restore_point(%s)::text, now(),"
            " (SELECT timeline_id FROM pg_control_checkpoint())",
            [name],
        ).fetchone()
        conn.execute("SELECT pg_switch_wal()")
    assert row is not None
    point = RestorePoint(name, str(row[0]), row[1], int(row[2]))
    repo.save_restore_point(point)
    if as_json:
        emit_json(point)
        return
    console.print(f'restore point "{name}" at {point.lsn}')
