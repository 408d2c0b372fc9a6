"""``dbamgr verify`` and ``dbamgr drift``."""

from __future__ import annotations

import sys

import click

from dbamgr.cli._context import AppContext, json_option, pass_app, server_option
from dbamgr.cli._output import console, emit_json, err_console, format_ms, styled
from dbamgr.cli._progress import count_bar
from dbamgr.migrations.source import Migration
from dbamgr.schema.diff import Change
from dbamgr.verify import MigrationCheck, PhaseTrace, VerifyReport, detect_drift
from dbamgr.verify import verify as run_verify
from dbamgr.verify.engine import DOWN_MISMATCH, FAILED, PASSED, REUP_MISMATCH
from dbamgr.verify.locks import SAMPLE_INTERVAL, StatementTrace, TableLock

_MARK = {PASSED: ("✓", "green"), FAILED: ("✗", "red")}
_NOT_SEEN = f"no lock seen (sampled every {SAMPLE_INTERVAL * 1000:g} ms)"


def _say(text: str, indent: int, style: str = "") -> None:
    """Print *text* *indent* columns in; a line the terminal wraps goes on
    under its own start, not at the margin."""
    from rich.padding import Padding
    from rich.text import Text

    console.print(Padding(Text(text, style=style), (0, 0, 0, indent), expand=False))


def _show_changes(title: str, changes: list[Change]) -> None:
    _say(f"{title}:", 4)
    for change in changes:
        for line in change.describe().splitlines():
            _say(line, 6)


def _show_locks(direction: str, phase: PhaseTrace | None, details: bool) -> None:
    """The locks of one run: the ones that block writes or rewrite, each on a
    line of its own; with *details* (``--locks``), under a header for the run,
    every lock and then every statement's."""
    if phase is None:
        return
    if not details:
        for lock in phase.locks:
            if _covered(lock, phase.locks):
                continue
            if lock.blocks_writes or lock.rewritten:
                style = "red" if lock.blocks_reads else "yellow"
                _say(f"{direction}: {lock.describe()}", 4, style)
        return
    header = f"{direction}:"
    if not phase.in_transaction:
        header = f"{direction} (outside a transaction):"
    _say(header, 4)
    for lock in phase.locks:
        style = "red" if lock.blocks_reads else "yellow" if lock.blocks_writes else ""
        _say(lock.describe(), 6, style)
    for trace in phase.statements:
        _say(
            f"#{trace.index} line {trace.line} "
            f"{format_ms(trace.seconds * 1000)}: {_statement_locks(trace)}",
            6,
        )


def _covered(lock: TableLock, locks: list[TableLock]) -> bool:
    """Whether *lock* is on a sequence whose table the run locked as strongly
    (a table dropped with its serial column's sequence): one line says it."""
    if lock.owner is None:
        return False
    return any(
        other.relation == lock.owner and other.rank >= lock.rank for other in locks
    )


def _statement_locks(trace: StatementTrace) -> str:
    locks = ", ".join(f"{lock.relation} {lock.mode}" for lock in trace.locks)
    if not locks:
        # outside a transaction locks are sampled, and a short one can be missed
        locks = _NOT_SEEN if trace.sampled else "no lock on existing relations"
    for verb, relations in (
        ("rewrote", trace.rewrites),
        ("truncated", trace.truncated),
        ("dropped", trace.dropped),
    ):
        if relations:
            locks += f"; {verb} {', '.join(relations)}"
    return locks


def _render_check(check: MigrationCheck, details: bool) -> None:
    times = []
    if check.up:
        times.append(f"up {format_ms(check.up.seconds * 1000)}")
    if check.down:
        times.append(f"down {format_ms(check.down.seconds * 1000)}")
    if check.reup_seconds is not None:
        times.append(f"up {format_ms(check.reup_seconds * 1000)}")
    mark = _MARK.get(check.status, ("·", "yellow"))
    console.print(styled(mark, f" {check.ident}  ", (" · ".join(times), "dim")))
    for failure in check.failures:
        # a failed run's reason continues with the server's ERROR, statement…;
        # a schema mismatch with its differences, right under it
        for line in failure.splitlines():
            _say(line, 4, "red")
        if failure.startswith(DOWN_MISMATCH):
            _show_changes(
                "after the down, compared with before the up", check.down_diff
            )
        elif failure.startswith(REUP_MISMATCH):
            _show_changes(
                "after the second up, compared with the first", check.reup_diff
            )
    for note in check.notes:
        _say(note, 4, "dim")
    _show_locks("up", check.up, details)
    _show_locks("down", check.down, details)


def _render_summary(report: VerifyReport) -> None:
    checked = len(report.migrations)
    passed = sum(1 for m in report.migrations if m.status == PASSED)
    irreversible = checked - passed - len(report.failed)
    counts: list[str | tuple[str, str]] = [f"{passed} verified"]
    if irreversible:
        counts.append(f", {irreversible} irreversible (only the up ran)")
    if report.failed:
        failed = ", ".join(m.ident for m in report.failed)
        counts.append((f", {len(report.failed)} failed: {failed}", "red"))
    took = format_ms(report.seconds * 1000)
    console.print(styled(f"{checked} migration(s) checked in {took}: ", *counts))
    if report.applied_first:
        console.print(
            f"{report.applied_first} earlier migration(s) applied first, without checks"
        )
    if report.not_verified:
        console.print(
            f"{len(report.not_verified)} later migration(s) not verified (verify "
            f"stops at a failed up or down): {', '.join(report.not_verified)}",
            style="red",
        )
    if report.seeds_loaded:
        console.print(f"seed data loaded: {', '.join(report.seeds_loaded)}")
    empty = report.checked_empty
    if empty:
        where = (
            "no seed data in seeds/"
            if not report.seeds_loaded
            else "the seed data loads later"
        )
        console.print(
            f"the data check found no rows before {len(empty)} migration(s) "
            f"({where}): a down that deletes rows there goes unseen",
            style="yellow",
        )
    for problem in report.seed_problems:
        console.print(styled(_MARK[FAILED], f" {problem}"))


@click.command()
@click.option("--from", "from_version", metavar="VERSION", help="Verify from here on.")
@server_option("A server to make the scratch database on.")
@click.option("--no-data-check", is_flag=True, help="Skip the row check.")
@click.option("--locks", "details", is_flag=True, help="Show every statement's locks.")
@click.option(
    "--full-snapshots",
    is_flag=True,
    help="Read the whole schema at every step (slower, no change tracking).",
)
@json_option
@pass_app
def verify(
    app: AppContext,
    from_version: str | None,
    server_url: str | None,
    no_data_check: bool,
    details: bool,
    full_snapshots: bool,
    as_json: bool,
) -> None:
    """Prove each migration reversible: up, down, up on a scratch database.

    After each down the schema must equal the one before the up, and tables keep
    their rows; after the second up it must equal the first. Reports the locks
    each statement takes and the tables it rewrites. Exits with 1 on a failure.
    """

    with count_bar(app, "verify") as bar:

        def progress(position: int, count: int, migration: Migration) -> None:
            if bar is not None:
                bar(position, count, migration.ident)

        def show(check: MigrationCheck) -> None:
            # each result as it comes: a CI log fills as verify goes on
            if not as_json:
                _render_check(check, details)

        report = run_verify(
            app.project,
            server_url=server_url,
            from_version=from_version,
            data_check=not no_data_check,
            snapshots="full" if full_snapshots else "incremental",
            on_progress=progress,
            on_check=show,
        )
    if as_json:
        emit_json(report)
    else:
        _render_summary(report)
    if not report.ok:
        sys.exit(1)


@click.command()
@server_option("A server to replay the migrations on.")
@json_option
@pass_app
def drift(app: AppContext, server_url: str | None, as_json: bool) -> None:
    """Show what changed in the target's schema outside its migrations.

    Exits with 1 when there is drift.
    """
    report = detect_drift(app.project, app.target(), server_url=server_url)
    if as_json:
        emit_json(report)
    else:
        console.print(f"target: {report.target}")
        for warning in report.warnings:
            err_console.print(styled(("warning:", "yellow"), f" {warning}"))
        if report.drifted:
            console.print(
                f"{len(report.changes)} change(s) made outside the "
                f"{report.replayed} applied migration(s):"
            )
            for change in report.changes:
                for number, line in enumerate(change.describe().splitlines()):
                    _say(line, 2 if number == 0 else 4)
        else:
            console.print(
                f"no drift: the schema is what the {report.replayed} applied "
                "migration(s) build"
            )
    if report.drifted:
        sys.exit(1)
