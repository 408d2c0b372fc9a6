"""``dbamgr backup``: base and logical backups, the catalog, verify, expiry."""

from __future__ import annotations

import sys

import click
from rich.table import Table

from dbamgr.backup import base, logical, retention, schedule, verify
from dbamgr.backup.repository import BackupInfo, project_repository
from dbamgr.cli._context import AppContext, json_option, pass_app
from dbamgr.cli._output import (
    console,
    emit_json,
    err_console,
    format_time,
    styled,
)
from dbamgr.cli._progress import progress_bar
from dbamgr.server import find_binaries


def _size(value: int) -> str:
    size = float(value)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(value)


@click.group()
def backup() -> None:
    """Take, list, verify and expire backups in the repository."""


@backup.command(name="base")
@click.option(
    "--incremental",
    is_flag=True,
    help="Copy only what changed since the previous backup (PostgreSQL 17+).",
)
@json_option
@pass_app
def base_command(app: AppContext, incremental: bool, as_json: bool) -> None:
    """Take a physical base backup with pg_basebackup.

    It is recorded as complete only once its files are synced, checked against
    its manifest, and the WAL up to its end is archived.
    """
    project = app.project
    settings = project.config.backup
    target = app.target()
    repo = project_repository(project, create=True)
    with progress_bar(app) as show:
        info = base.take_base_backup(
            repo,
            target.url,
            find_binaries(project.config.server.bin_dir),
            incremental=incremental,
            compression=settings.compression,
            level=settings.compression_level,
            archive_wait=settings.archive_wait,
            row_counts=settings.row_counts,
            on_progress=show,
        )
    if as_json:
        emit_json(info)
        return
    console.print(
        styled(
            "backup ",
            (info.id, "bold"),
            f" complete: {info.kind}, {_size(info.data_size)} stored in "
            f"{_size(info.size)} ({info.compression}), {info.start_lsn} to "
            f"{info.stop_lsn} on timeline {info.timeline}, {info.seconds:.1f}s",
        )
    )


@backup.command(name="logical")
@click.option(
    "--database", "databases", multiple=True, help="A database to dump (repeatable)."
)
@click.option("--jobs", type=int, help="Parallel dump jobs (default: [backup] jobs).")
@json_option
@pass_app
def logical_command(
    app: AppContext, databases: tuple[str, ...], jobs: int | None, as_json: bool
) -> None:
    """Dump databases with pg_dump (directory format), plus roles and globals."""
    project = app.project
    repo = project_repository(project, create=True)
    with progress_bar(app) as show:
        info = logical.take_logical_backup(
            repo,
            app.target().url,
            find_binaries(project.config.server.bin_dir),
            databases=list(databases) or None,
            jobs=jobs or project.config.backup.jobs,
            on_progress=show,
        )
    if as_json:
        emit_json(info)
        return
    console.print(
        styled(
            "backup ",
            (info.id, "bold"),
            f" complete: logical, {', '.join(info.databases)}, {_size(info.size)}",
        )
    )


@backup.command(name="list")
@json_option
@pass_app
def list_command(app: AppContext, as_json: bool) -> None:
    """List the backups in the repository, oldest first."""
    backups = project_repository(app.project).backups()
    if as_json:
        emit_json(backups)
        return
    if not backups:
        console.print("no backups yet: take one with `dbamgr backup base`")
        return
    table = Table(box=None, pad_edge=False)
    for column in ("id", "kind", "status", "ended", "size", "WAL range", "parent"):
        table.add_column(column, no_wrap=column in ("id", "parent"))
    for info in backups:
        table.add_row(
            info.id,
            info.kind,
            info.status,
            format_time(info.stop_time),
            _size(info.size),
            f"{info.start_lsn}-{info.stop_lsn}" if info.physical else "",
            info.parent or "",
        )
    console.print(table)


def _show(info: BackupInfo) -> None:
    rows = [
        ("id", info.id),
        ("kind", info.kind),
        ("status", info.status),
        ("started", format_time(info.start_time)),
        ("ended", format_time(info.stop_time)),
        ("PostgreSQL", info.pg_version),
        ("system id", info.system_identifier or ""),
        ("source", info.source),
        ("size", f"{_size(info.size)} stored, {_size(info.data_size)} of data"),
        ("compression", info.compression),
    ]
    if info.physical:
        rows += [
            ("WAL", f"{info.start_lsn} to {info.stop_lsn}, timeline {info.timeline}"),
            ("parent", info.parent or "(full)"),
            ("row counts", "exact" if info.counts_exact else "inexact or none"),
        ]
    else:
        rows.append(("databases", ", ".join(info.databases)))
    for label, value in rows:
        console.print(f"{label + ':':<13} {value}")


@backup.command(name="show")
@click.argument("backup_id")
@json_option
@pass_app
def show_command(app: AppContext, backup_id: str, as_json: bool) -> None:
    """Show the catalog document of backup BACKUP_ID (a unique prefix is enough)."""
    info = project_repository(app.project).get(backup_id)
    if as_json:
        emit_json(info)
    else:
        _show(info)


@backup.command(name="verify")
@click.argument("backup_id", required=False)
@json_option
@pass_app
def verify_command(app: AppContext, backup_id: str | None, as_json: bool) -> None:
    """Check backups against their checksums and manifests, and their WAL for gaps.

    Exits with 1 when a problem is found.
    """
    project = app.project
    repo = project_repository(project)
    with progress_bar(app) as show:
        result = verify.verify(
            repo,
            find_binaries(project.config.server.bin_dir),
            backup_id,
            on_progress=show,
        )
    if as_json:
        emit_json({"ok": result.ok, **_verify_json(result)})
    else:
        for check in result.backups:
            mark = ("ok", "green") if check.ok else ("FAILED", "red")
            wal = ""
            if check.wal is not None and check.wal.last_segment:
                wal = f" (WAL {check.wal.first_segment} to {check.wal.last_segment})"
            console.print(styled(f"{check.id} {check.kind}: ", mark, wal))
            for problem in check.problems:
                console.print(f"  - {problem}")
        if not result.backups:
            console.print("no backups to verify")
    if not result.ok:
        sys.exit(1)


def _verify_json(result: verify.VerifyReport) -> dict[str, object]:
    return {
        "repository": result.repository,
        "backups": [
            {
                "id": c.id,
                "kind": c.kind,
                "ok": c.ok,
                "problems": c.problems,
                "wal": c.wal,
            }
            for c in result.backups
        ],
    }


@backup.command(name="expire")
@click.option("--dry-run", is_flag=True, help="List what would go; remove nothing.")
@json_option
@pass_app
def expire_command(app: AppContext, dry_run: bool, as_json: bool) -> None:
    """Remove backups and WAL outside the retention policy ([backup] keep_*)."""
    project = app.project
    settings = project.config.backup
    plan = retention.expire(
        project_repository(project),
        keep_full=settings.keep_full,
        keep_days=settings.keep_days,
        keep_logical=settings.keep_logical,
        dry_run=dry_run,
    )
    if as_json:
        emit_json(plan)
        return
    verb = "would remove" if dry_run else "removed"
    for backup_id, reason in plan.remove.items():
        console.print(f"{verb} {backup_id}: {reason}")
    for backup_id, reason in plan.keep.items():
        console.print(f"kept {backup_id}: {reason}")
    console.print(
        f"{verb} {len(plan.wal_removed)} WAL file(s)"
        + (
            f"; WAL from {plan.oldest_wal_kept} on is kept"
            if plan.oldest_wal_kept
            else ""
        )
    )


@backup.command(name="schedule")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["cron", "systemd"]),
    default="cron",
    show_default=True,
    help="Crontab lines, or systemd service and timer units.",
)
@click.option("--at", "at", default="01:30", show_default=True, help="Backup time.")
@pass_app
def schedule_command(app: AppContext, fmt: str, at: str) -> None:
    """Print a schedule: daily backups, archive checks, heartbeats, weekly drills."""
    job_list = schedule.jobs(app.project.root, backup_time=at)
    if fmt == "cron":
        click.echo(schedule.crontab(job_list), nl=False)
        return
    for name, text in schedule.systemd_units(job_list).items():
        click.echo(f"# /etc/systemd/system/{name}\n{text}")
    err_console.print(
        "then: systemctl daemon-reload && systemctl enable --now "
        + " ".join(n for n in schedule.systemd_units(job_list) if n.endswith(".timer"))
    )
