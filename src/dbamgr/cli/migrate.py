"""The migration commands: new, status, up, down, redo, history, resolve."""

from __future__ import annotations

import sys
from typing import Any

import click

from dbamgr import migrations
from dbamgr.cli._context import AppContext, json_option, pass_app
from dbamgr.cli._output import (
    console,
    emit_json,
    err_console,
    format_ms,
    format_time,
    get_console,
    styled,
)
from dbamgr.migrations.history import DONE
from dbamgr.migrations.runner import Event, EventHandler, display_path
from dbamgr.migrations.status import (
    STATE_APPLIED,
    STATE_CHANGED,
    STATE_FAILED,
    STATE_IN_PROGRESS,
    STATE_MISSING,
    STATE_OUT_OF_ORDER,
    STATE_PENDING,
    STATE_RUNNING,
    StatusReport,
)

dry_run_option = click.option(
    "--dry-run", is_flag=True, help="Print the SQL that would run; run nothing."
)

approve_option = click.option(
    "--approve",
    "approve",
    metavar="VERSION",
    multiple=True,
    help="Approve the data loss of this migration on a protected environment "
    "(repeatable).",
)

_STATE_STYLE = {
    STATE_APPLIED: "green",
    STATE_PENDING: "cyan",
    STATE_OUT_OF_ORDER: "yellow",
    STATE_MISSING: "yellow",
    STATE_CHANGED: "red",
    STATE_FAILED: "bold red",
    STATE_RUNNING: "bold red",
    STATE_IN_PROGRESS: "yellow",
}


# with more migrations than this in one run, a terminal shows a progress bar
_BAR_FROM = 10


def _progress(app: AppContext) -> EventHandler | None:
    """Show each migration as it runs (a bar on a terminal for long runs), unless
    the output is JSON."""
    if app.json:
        return None
    bar: dict[str, Any] = {}

    def show(event: Event) -> None:
        verb = "applying" if event.direction == "up" else "reverting"
        if event.count > _BAR_FROM and err_console.is_terminal:
            _show_bar(bar, event, verb)
        elif event.kind == "start":
            err_console.print(f"{verb} {event.migration.ident} …", end="")
        elif event.kind == "done":
            took = format_ms(event.seconds * 1000)
            err_console.print(styled(" ", ("done", "green"), f" ({took})"))
        elif event.kind == "failed":
            err_console.print(styled(" ", ("failed", "red")))
        elif event.kind == "retry":
            err_console.print(
                styled(
                    " ",
                    (event.message, "yellow"),
                    f"; retrying in {event.seconds:.3g}s …",
                ),
                end="",
            )

    return show


def _show_bar(bar: dict[str, Any], event: Event, verb: str) -> None:
    from rich.progress import Progress, TextColumn

    if "progress" not in bar:
        # the description holds a migration's name: shown as it is, not as markup
        name = TextColumn("{task.description}", "progress.description", markup=False)
        columns = (name, *Progress.get_default_columns()[1:])
        progress = Progress(*columns, console=get_console(stderr=True))
        progress.start()
        bar["progress"] = progress
        bar["task"] = progress.add_task(verb, total=event.count)
    progress, task = bar["progress"], bar["task"]
    if event.kind == "start":
        progress.update(task, description=f"{verb} {event.migration.ident}")
    elif event.kind == "retry":
        progress.console.print(
            styled((f"{event.migration}: {event.message}", "yellow"), "; retrying")
        )
    elif event.kind in ("done", "failed"):
        progress.advance(task)
        if event.kind == "failed" or event.position == event.count:
            progress.update(task, description=f"{verb}: {event.kind}")
            progress.stop()


@click.command()
@click.argument("name")
@click.option(
    "--layout",
    type=click.Choice(["directory", "pair", "single"]),
    help="File layout (default: the one the directory uses).",
)
@json_option
@pass_app
def new(app: AppContext, name: str, layout: str | None, as_json: bool) -> None:
    """Create a new migration NAME with up and down templates.

    Its version is the time (UTC), or the one after the newest migration's when
    that is not older, so that the new migration is always the newest.
    """
    created = migrations.new_migration(app.project, name, layout=layout)
    if as_json:
        emit_json(created)
        return
    for path in created.files:
        console.print(styled(("created", "green"), f" {display_path(path)}"))
    if created.after is not None:
        console.print(
            styled(
                ("note:", "yellow"),
                f' the clock is not past "{created.after}": version '
                f"{created.version} follows it, so that the new migration is the "
                "newest",
            ),
            soft_wrap=True,
        )


# applied migrations shown by default; the rest are summed up
_APPLIED_SHOWN = 5


def _render_status(report: StatusReport, show_all: bool) -> None:
    console.print(f"target: {report.target}")
    if report.lock_holder is not None:
        console.print(
            styled(
                ("locked:", "yellow"),
                f" {report.lock_holder.describe()} holds the migration lock: a "
                "runner is at work, and a migration it applies in a transaction "
                "shows as pending until it commits",
            ),
            soft_wrap=True,
        )
    shown = report.migrations
    applied = [m for m in shown if m.state == STATE_APPLIED]
    hidden = len(applied) - _APPLIED_SHOWN
    if not show_all and hidden > 0:
        older = {id(m) for m in applied[:hidden]}
        shown = [m for m in shown if id(m) not in older]
        console.print(
            f"{hidden} older applied migration(s) not shown (--all)", style="dim"
        )
    if not report.migrations:
        console.print("no migrations yet: create one with `dbamgr new NAME`")
    else:
        from rich.table import Table

        table = Table(box=None, pad_edge=False)
        for column in ("version", "name", "state", "applied at", "took", "note"):
            table.add_column(column)
        for m in shown:
            note = ""
            if m.state in (STATE_FAILED, STATE_RUNNING, STATE_IN_PROGRESS):
                note = f"{m.statements_done}/{m.statements_total} statements"
                if m.error:
                    note += f": {m.error}"
            elif m.state in (STATE_PENDING, STATE_OUT_OF_ORDER):
                if m.irreversible:
                    note = f"irreversible: {m.irreversible}"
                elif not m.has_down:
                    note = "no down: `up` will refuse it"
            elif m.state == STATE_CHANGED:
                note = "file changed since applied"
            style = _STATE_STYLE.get(m.state, "")
            table.add_row(
                m.label,
                m.name,
                styled((m.state, style)),
                format_time(m.applied_at),
                format_ms(m.duration_ms),
                note,
            )
        console.print(table)
    summary = ", ".join(f"{count} {state}" for state, count in report.summary.items())
    console.print(summary or "nothing applied, nothing pending")
    for warning in report.warnings:
        err_console.print(styled(("warning:", "yellow"), f" {warning}"))


@click.command()
@click.option("--all", "show_all", is_flag=True, help="List every applied migration.")
@json_option
@pass_app
def status(app: AppContext, show_all: bool, as_json: bool) -> None:
    """Show applied, pending, missing, changed and failed migrations.

    Says which session holds the migration lock, if one does (status itself
    neither takes nor waits for it). Exits with 1 when a migration failed, was
    interrupted, changed since it was applied, or lost its file.
    """
    report = migrations.status(app.project, app.target())
    if as_json:
        emit_json(report)
    else:
        _render_status(report, show_all)
    if report.problems:
        sys.exit(1)


def _render_run(report: migrations.RunReport, as_json: bool) -> None:
    if as_json:
        emit_json(report)
        return
    if report.sql is not None:
        click.echo(report.sql, nl=False)
        return
    if not report.runs:
        console.print("nothing to do: the database is up to date")
        return
    total = sum(run.seconds or 0 for run in report.runs)
    verb = {"up": "applied", "down": "reverted", "redo": "redid"}[report.direction]
    count = len(report.runs) if report.direction != "redo" else 1
    console.print(f"{verb} {count} migration(s) in {format_ms(total * 1000)}")


@click.command()
@click.option("--to", "to", metavar="VERSION", help="Stop after this version.")
@click.option(
    "--dry-run", is_flag=True, help="Print the SQL that would run; run nothing."
)
@click.option(
    "--allow-out-of-order",
    is_flag=True,
    help="Apply pending migrations older than the newest applied one.",
)
@approve_option
@json_option
@pass_app
def up(
    app: AppContext,
    *,
    to: str | None,
    dry_run: bool,
    allow_out_of_order: bool,
    approve: tuple[str, ...],
    as_json: bool,
) -> None:
    """Apply pending migrations, each in its own transaction."""
    report = migrations.up(
        app.project,
        app.target(),
        to=to,
        dry_run=dry_run,
        allow_out_of_order=allow_out_of_order,
        approve=approve,
        on_event=_progress(app),
    )
    _render_run(report, as_json)


@click.command()
@click.option("--steps", type=int, help="How many migrations to revert (default 1).")
@click.option(
    "--to", "to", metavar="VERSION", help="Revert everything newer than this."
)
@click.option(
    "--dry-run", is_flag=True, help="Print the SQL that would run; run nothing."
)
@approve_option
@json_option
@pass_app
def down(
    app: AppContext,
    *,
    steps: int | None,
    to: str | None,
    dry_run: bool,
    approve: tuple[str, ...],
    as_json: bool,
) -> None:
    """Revert applied migrations, newest first (one by default)."""
    report = migrations.down(
        app.project,
        app.target(),
        steps=steps,
        to=to,
        dry_run=dry_run,
        approve=approve,
        on_event=_progress(app),
    )
    _render_run(report, as_json)


@click.command()
@click.option(
    "--dry-run", is_flag=True, help="Print the SQL that would run; run nothing."
)
@approve_option
@json_option
@pass_app
def redo(
    app: AppContext, *, dry_run: bool, approve: tuple[str, ...], as_json: bool
) -> None:
    """Revert the newest applied migration and apply it again.

    A pending migration newer than it is left alone: redo never applies it.
    """
    report = migrations.redo(
        app.project,
        app.target(),
        dry_run=dry_run,
        approve=approve,
        on_event=_progress(app),
    )
    _render_run(report, as_json)


@click.command()
@click.option("--limit", type=int, help="Show only the newest N entries.")
@json_option
@pass_app
def history(app: AppContext, limit: int | None, as_json: bool) -> None:
    """Show the log of the target's ups, downs and resolutions.

    Every up and down that finished, every one run outside a transaction that
    failed (with its error) or was interrupted (logged when it is resolved), and
    every resolution. A run in a transaction that failed changed nothing and is
    not logged.
    """
    entries = migrations.history(app.project, app.target(), limit=limit)
    if as_json:
        emit_json(entries)
        return
    if not entries:
        console.print("no history yet")
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for column in ("when", "version", "name", "action", "took", "by", "note"):
        table.add_column(column)
    for entry in entries:
        took = entry.duration.total_seconds() * 1000 if entry.duration else None
        action = styled(entry.direction)
        if entry.status != DONE:
            action = styled((f"{entry.direction} {entry.status}", "red"))
        note = "; ".join(text for text in (entry.note, entry.error) if text)
        table.add_row(
            format_time(entry.started_at),
            entry.label,
            entry.name,
            action,
            format_ms(took),
            entry.applied_by,
            note,
        )
    console.print(table)


# what `resolve` did, in words: {0} the migration, {1} its status before
_RESOLVED = {
    "applied": "{0}: recorded as applied: its changes are in place (it was {1})",
    "rolled-back": "{0}: recorded as rolled back: its history row is removed, so "
    "`up` runs it again (it was {1})",
    "accept-checksum": "{0}: accepted the changed checksum of its file; it stays {1}",
}


@click.command()
@click.argument("version")
@click.option(
    "--applied", "action", flag_value="applied", help="Its changes are in place."
)
@click.option(
    "--rolled-back",
    "action",
    flag_value="rolled-back",
    help="Its changes are not in place.",
)
@click.option(
    "--accept-checksum",
    "action",
    flag_value="accept-checksum",
    help="Record the edited file's checksum as the applied one.",
)
@json_option
@pass_app
def resolve(app: AppContext, version: str, action: str | None, as_json: bool) -> None:
    """Record the outcome of a migration that did not finish, or accept an edit."""
    if action is None:
        raise click.UsageError(
            "give one of --applied, --rolled-back, --accept-checksum"
        )
    result = migrations.resolve(app.project, app.target(), version, action)
    if as_json:
        emit_json(result)
        return
    console.print(_RESOLVED[action].format(result.ident, result.previous_status))
