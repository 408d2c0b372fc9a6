"""``dbamgr drill`` and ``dbamgr heartbeat``."""

from __future__ import annotations

import sys

import click

from dbamgr.backup.drill import DrillReport, run_drill
from dbamgr.backup.heartbeat import write_heartbeat
from dbamgr.backup.repository import project_repository
from dbamgr.cli._context import AppContext, json_option, pass_app
from dbamgr.cli._output import console, emit_json, styled
from dbamgr.cli._progress import progress_bar
from dbamgr.cli.restore import parse_time
from dbamgr.errors import DbamgrError
from dbamgr.server import find_binaries


def _render(report: DrillReport) -> None:
    verdict = ("passed", "green") if report.ok else ("FAILED", "red")
    console.print(
        styled(
            "drill ", verdict, f": backup {report.backup or '-'}, to {report.target}"
        )
    )
    for check in report.checks:
        mark = ("ok  ", "green") if check.ok else ("FAIL", "red")
        console.print(styled("  ", mark, f" {check.name}: {check.detail}"))
    if report.rto_seconds is not None:
        console.print(f"RTO: {report.rto_seconds:.1f}s")
    if report.rpo_seconds is not None:
        console.print(f"RPO: {report.rpo_seconds:.1f}s")


@click.command()
@click.option("--to-time", metavar="TIME", help="Restore to this moment, not the end.")
@json_option
@pass_app
def drill(app: AppContext, to_time: str | None, as_json: bool) -> None:
    """Restore the newest backup into a scratch cluster, check it, measure RPO/RTO.

    Exits with 1 when a check fails or [backup] rpo_seconds / rto_seconds are
    missed. The scratch cluster is removed afterwards.
    """
    project = app.project
    settings = project.config.backup
    try:
        source_url: str | None = app.target().url
    except DbamgrError:
        source_url = None
    with progress_bar(app) as show:
        report = run_drill(
            project_repository(project),
            find_binaries(project.config.server.bin_dir),
            source_url=source_url,
            to_time=parse_time(to_time),
            rpo_target=settings.rpo_seconds,
            rto_target=settings.rto_seconds,
            run_as=project.config.server.run_as,
            on_progress=show,
        )
    if as_json:
        emit_json({"ok": report.ok, **vars(report)})
    else:
        _render(report)
    if not report.ok:
        sys.exit(1)


@click.command()
@json_option
@pass_app
def heartbeat(app: AppContext, as_json: bool) -> None:
    """Write a heartbeat row (run every minute, it lets drills measure RPO)."""
    beat = write_heartbeat(app.target().url)
    if as_json:
        emit_json(beat)
        return
    console.print(f"heartbeat {beat.id} at {beat.written_at.isoformat()}")
