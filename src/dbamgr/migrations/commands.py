"""The migration verbs: status, up, down, redo, history, resolve.

Each takes a :class:`~dbamgr.config.Project` and a :class:`~dbamgr.target.Target`
and returns a plain dataclass; the CLI only renders it. Every verb that changes
the target checks the whole selection first (failed migrations, changed files,
out-of-order and irreversible migrations) and changes nothing if a check fails.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from dbamgr.config import Project
from dbamgr.errors import MigrationError, UsageError
from dbamgr.migrations import lock
from dbamgr.migrations.history import (
    FAILED,
    INTERRUPTED,
    RUNNING,
    HistoryRow,
    LogEntry,
)
from dbamgr.migrations.plan import DOWN, UP, Plan, build_plan
from dbamgr.migrations.runner import (
    EventHandler,
    Session,
    display_path,
)
from dbamgr.migrations.source import (
    DIRECTORY,
    PAIR,
    Migration,
    MigrationSet,
    load_migrations,
    parse_version,
)
from dbamgr.migrations.status import StatusReport, compare
from dbamgr.target import Target

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MigrationRun:
    """One migration applied or reverted (or that would be, in a dry run)."""

    version: int
    ident: str
    direction: str
    path: str
    in_transaction: bool
    seconds: float | None = None


@dataclass
class RunReport:
    """What ``up``, ``down`` and ``redo`` did."""

    target: str
    direction: str
    dry_run: bool
    runs: list[MigrationRun] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    sql: str | None = None


@contextmanager
def _session(
    project: Project, target: Target, purpose: str, on_event: EventHandler | None
) -> Iterator[Session]:
    session = Session(
        target, project.config.migrations, purpose=purpose, on_event=on_event
    )
    try:
        yield session
    finally:
        session.close()


def _source(project: Project) -> MigrationSet:
    return load_migrations(project.migrations_dir)


def status(project: Project, target: Target) -> StatusReport:
    """Compare the migration files with the target's history (read only: it
    neither takes nor waits for the migration lock, but says who holds it)."""
    source = _source(project)
    with _session(project, target, "status", None) as session:
        # asked before and after: a run that starts or ends while the history is
        # read still counts as running
        before = lock.find_holder(session.conn, session.key)
        history = session.read_history()
        holder = lock.find_holder(session.conn, session.key) or before
    states = compare(source, history, locked=holder is not None)
    report = StatusReport(target.display, states, lock_holder=holder)
    report.warnings += [str(problem) for problem in source.warnings]
    return report


# -- checks shared by the verbs that change the target ---------------------------


def _refuse_unresolved(history: list[HistoryRow]) -> None:
    stuck = [row for row in history if row.status in (FAILED, RUNNING)]
    if not stuck:
        return
    lines = []
    for row in stuck:
        how = "failed" if row.status == FAILED else "was interrupted"
        lines.append(
            f'  "{row.ident}" {how} during its {row.direction} after '
            f"{row.statements_done} of {row.statements_total} statement(s)"
            + (f": {row.error}" if row.error else "")
        )
    first = stuck[0]
    raise MigrationError(
        "a migration run outside a transaction did not finish:\n" + "\n".join(lines),
        hint="finish or undo its statements by hand, then record the outcome with "
        f"`dbamgr resolve {first.label} --applied` (its changes are in place) or "
        f"`dbamgr resolve {first.label} --rolled-back` (they are not)",
        versions=[row.version for row in stuck],
    )


def _refuse_changed(
    source: MigrationSet, history: list[HistoryRow], versions: set[int] | None = None
) -> None:
    changed = []
    for row in history:
        migration = source.by_version.get(row.version)
        if migration is None or migration.checksum == row.checksum:
            continue
        if versions is None or row.version in versions:
            changed.append(migration)
    if not changed:
        return
    listing = "\n".join(f"  {display_path(m.path)} ({m.ident})" for m in changed)
    raise MigrationError(
        f"{len(changed)} applied migration(s) changed since they were applied:\n"
        + listing,
        hint="an applied migration must not change: put the change in a new "
        "migration and restore the file; if the edit is harmless (a comment), "
        f"record it with `dbamgr resolve {changed[0].label} --accept-checksum`",
        files=[str(m.path) for m in changed],
    )


def _missing_down_hint(migration: Migration) -> str:
    if migration.layout == DIRECTORY:
        where = f"{display_path(migration.path)}/down.sql"
    elif migration.layout == PAIR:
        where = display_path(migration.path).removesuffix(".up.sql") + ".down.sql"
    else:
        where = f"a '-- migrate:down' section in {display_path(migration.path)}"
    return where


def _refuse_irreversible_without_reason(pending: list[Migration]) -> None:
    for migration in pending:
        if migration.has_down or migration.irreversible_reason is not None:
            continue
        what = "an empty down" if migration.down is not None else "no down"
        raise MigrationError(
            f'migration "{migration.ident}" has {what}: write '
            f"{_missing_down_hint(migration)}, or mark the up with "
            "-- dbamgr:irreversible <reason>",
            hint="dbamgr applies only migrations it can revert, unless the up says "
            "why it cannot be",
            migration=migration.ident,
            file=str(migration.up.path),
        )


def _select_pending(
    source: MigrationSet,
    history: list[HistoryRow],
    to: str | None,
    allow_out_of_order: bool,
) -> tuple[list[Migration], list[str]]:
    applied = {row.version for row in history}
    pending = [m for m in source.migrations if m.version not in applied]
    if to is not None:
        limit = parse_version(to)
        if source.by_version.get(limit) is None and limit not in applied:
            raise UsageError(
                f'--to "{to}": no migration has that version',
                hint="run `dbamgr status` to see the versions",
            )
        pending = [m for m in pending if m.version <= limit]
    newest = max(applied, default=None)
    late = [m for m in pending if newest is not None and m.version < newest]
    warnings = []
    if late and not allow_out_of_order:
        listing = "\n".join(f"  {m.ident}" for m in late)
        raise MigrationError(
            f"{len(late)} pending migration(s) are older than the newest applied "
            f"one ({newest}):\n{listing}",
            hint="they were probably merged from another branch; check that they do "
            "not depend on newer ones, then run `dbamgr up --allow-out-of-order`",
            versions=[m.version for m in late],
        )
    if late:
        warnings.append(
            f"applying {len(late)} migration(s) out of order: "
            + ", ".join(m.ident for m in late)
        )
    return pending, warnings


def _missing_file_warnings(
    source: MigrationSet, history: list[HistoryRow]
) -> list[str]:
    return [
        f'applied migration "{row.ident}" has no file in '
        f"{display_path(source.directory)}"
        for row in history
        if row.version not in source.by_version
    ]


def _dry_run_text(session: Session, plans: list[Plan], locking: bool) -> str:
    parts = []
    if locking:
        parts.append(f"{lock.acquire_sql(session.key).as_string(None)};")
        parts += [f"{q.as_string(None)};" for q in session.tables.create()]
    parts += [plan.text() for plan in plans]
    if locking:
        parts.append(f"{lock.release_sql(session.key).as_string(None)};")
    return "\n\n".join(parts) + "\n"


def _execute(
    session: Session, report: RunReport, plans: list[Plan], dry_run: bool
) -> RunReport:
    if dry_run:
        report.sql = _dry_run_text(session, plans, locking=True)
    for position, plan in enumerate(plans, start=1):
        seconds = None if dry_run else session.run(plan, position, len(plans))
        report.runs.append(
            MigrationRun(
                plan.migration.version,
                plan.migration.ident,
                plan.direction,
                str(plan.script.path),
                plan.in_transaction,
                seconds,
            )
        )
    return report


def _plan(session: Session, migration: Migration, direction: str) -> Plan:
    return build_plan(
        migration,
        direction,
        tables=session.tables,
        timeouts=session.timeouts,
        applied_by=session.applied_by,
    )


def _approval_gate(
    target: Target,
    migrations: Sequence[Migration],
    direction: str,
    approve: Collection[str],
    dry_run: bool = False,
) -> list[str]:
    """Data loss needs approval on a protected target (see dbamgr.lint.gate).

    A dry run is never refused: it reports what a real run would refuse.
    """
    from dbamgr.lint import check_approval

    try:
        return check_approval(target, migrations, direction, approve)
    except MigrationError as exc:
        if not dry_run:
            raise
        return [f"a real run would be refused: {exc.message}"]


def _start(session: Session, dry_run: bool) -> list[HistoryRow]:
    """Lock (unless a dry run) and read the history under the lock."""
    if not dry_run:
        session.lock_and_prepare()
    return session.read_history()


# -- the verbs -------------------------------------------------------------------


def up(
    project: Project,
    target: Target,
    *,
    to: str | None = None,
    dry_run: bool = False,
    allow_out_of_order: bool = False,
    approve: Collection[str] = (),
    on_event: EventHandler | None = None,
) -> RunReport:
    """Apply the pending migrations in version order, up to *to* if given.

    Each runs in its own transaction with its history row, unless its file starts
    with ``-- dbamgr:no-transaction``. With *dry_run*, nothing runs and the report's
    ``sql`` holds exactly what would. On a protected target, migrations that lose
    data run only when approved in their file or by version in *approve*.
    """
    source = _source(project)
    with _session(project, target, "up", on_event) as session:
        history = _start(session, dry_run)
        _refuse_unresolved(history)
        _refuse_changed(source, history)
        pending, warnings = _select_pending(source, history, to, allow_out_of_order)
        _refuse_irreversible_without_reason(pending)
        warnings += _approval_gate(target, pending, UP, approve, dry_run)
        plans = [_plan(session, m, UP) for m in pending]
        report = RunReport(target.display, UP, dry_run)
        report.warnings += [str(p) for p in source.warnings]
        report.warnings += _missing_file_warnings(source, history) + warnings
        for warning in report.warnings:
            logger.warning("%s", warning)
        return _execute(session, report, plans, dry_run)


def _select_applied(
    source: MigrationSet,
    history: list[HistoryRow],
    steps: int | None,
    to: str | None,
) -> list[Migration]:
    if steps is not None and to is not None:
        raise UsageError("give --steps or --to, not both")
    newest_first = sorted(history, key=lambda row: row.version, reverse=True)
    if to is not None:
        limit = parse_version(to)
        if limit and limit not in {row.version for row in history}:
            raise UsageError(
                f'--to "{to}": no applied migration has that version',
                hint="give the version to return to (it stays applied), or 0 to "
                "revert everything",
            )
        rows = [row for row in newest_first if row.version > limit]
    else:
        count = 1 if steps is None else steps
        if count < 1:
            raise UsageError("--steps must be 1 or more")
        rows = newest_first[:count]
    selected = []
    for row in rows:
        migration = source.by_version.get(row.version)
        if migration is None:
            raise MigrationError(
                f'cannot revert "{row.ident}": its file is not in '
                f"{display_path(source.directory)}",
                hint="restore the file (e.g. from version control) and try again",
                migration=row.ident,
            )
        if migration.irreversible_reason is not None:
            raise MigrationError(
                f'migration "{migration.ident}" is irreversible: '
                f"{migration.irreversible_reason}",
                hint="nothing was reverted; restore from a backup to go further back, "
                "or stop before it with --to",
                migration=migration.ident,
                reason=migration.irreversible_reason,
            )
        if not migration.has_down:
            raise MigrationError(
                f'migration "{migration.ident}" has no down to run: write '
                f"{_missing_down_hint(migration)}",
                migration=migration.ident,
            )
        selected.append(migration)
    return selected


def down(
    project: Project,
    target: Target,
    *,
    steps: int | None = None,
    to: str | None = None,
    dry_run: bool = False,
    approve: Collection[str] = (),
    on_event: EventHandler | None = None,
) -> RunReport:
    """Revert applied migrations, newest first: one by default, *steps* of them,
    or every one newer than *to*. Nothing runs if any of them cannot be reverted,
    nor, on a protected target, if one loses data without approval."""
    source = _source(project)
    with _session(project, target, "down", on_event) as session:
        history = _start(session, dry_run)
        _refuse_unresolved(history)
        selected = _select_applied(source, history, steps, to)
        _refuse_changed(source, history, {m.version for m in selected})
        gate_warnings = _approval_gate(target, selected, DOWN, approve, dry_run)
        plans = [_plan(session, m, DOWN) for m in selected]
        report = RunReport(target.display, DOWN, dry_run, warnings=gate_warnings)
        for warning in gate_warnings:
            logger.warning("%s", warning)
        return _execute(session, report, plans, dry_run)


def redo(
    project: Project,
    target: Target,
    *,
    dry_run: bool = False,
    approve: Collection[str] = (),
    on_event: EventHandler | None = None,
) -> RunReport:
    """Revert the newest applied migration and apply it again.

    On a protected target its down and up pass the approval gate like ``down``
    and ``up``."""
    source = _source(project)
    with _session(project, target, "redo", on_event) as session:
        history = _start(session, dry_run)
        _refuse_unresolved(history)
        selected = _select_applied(source, history, 1, None)
        if not selected:
            raise MigrationError("no migration is applied: nothing to redo")
        _refuse_changed(source, history, {m.version for m in selected})
        migration = selected[0]
        warnings = _approval_gate(target, selected, DOWN, approve, dry_run)
        warnings += _approval_gate(target, selected, UP, approve, dry_run)
        plans = [_plan(session, migration, DOWN), _plan(session, migration, UP)]
        report = RunReport(target.display, "redo", dry_run, warnings=warnings)
        for warning in warnings:
            logger.warning("%s", warning)
        return _execute(session, report, plans, dry_run)


def history(
    project: Project, target: Target, *, limit: int | None = None
) -> list[LogEntry]:
    """The log of the target's runs, oldest first: every up and down that
    finished, every one outside a transaction that failed or was interrupted, and
    every resolution (see :mod:`dbamgr.migrations.history`)."""
    with _session(project, target, "history", None) as session:
        return session.tables.read_log(session.conn, limit)


RESOLVE_ACTIONS = ("applied", "rolled-back", "accept-checksum")


@dataclass(frozen=True)
class Resolution:
    """What ``dbamgr resolve`` recorded."""

    version: int
    ident: str
    action: str
    previous_status: str


def resolve(project: Project, target: Target, version: str, action: str) -> Resolution:
    """Record by hand the outcome of a migration dbamgr could not finish.

    *action* ``applied``: its changes are in place; ``rolled-back``: they are not
    (the row goes); ``accept-checksum``: the edited file is the applied one.
    """
    if action not in RESOLVE_ACTIONS:
        raise UsageError(
            f'unknown resolution "{action}"', hint="use " + ", ".join(RESOLVE_ACTIONS)
        )
    number = parse_version(version)
    with _session(project, target, "resolve", None) as session:
        session.lock_and_prepare()
        row = next((r for r in session.read_history() if r.version == number), None)
        if row is None:
            raise UsageError(
                f'migration "{version}" has no row in the history: nothing to resolve',
                hint="run `dbamgr status` to see the versions",
            )
        tables, conn = session.tables, session.conn
        if action == "accept-checksum":
            migration = _source(project).by_version.get(number)
            if migration is None:
                raise UsageError(
                    f'migration "{row.ident}" has no file to take the checksum of'
                )
            statements = [tables.set_checksum(number, migration.checksum)]
            note = (
                f"checksum accepted: {row.checksum[:12]} -> {migration.checksum[:12]}"
            )
            direction = "resolve"
        else:
            if row.status not in (FAILED, RUNNING):
                raise UsageError(
                    f'migration "{row.ident}" is {row.status}, not failed: nothing '
                    "to resolve",
                    hint="use `dbamgr down` to revert an applied migration",
                )
            if action == "applied":
                statements = [tables.mark_applied(number)]
            else:
                statements = [tables.delete(number)]
            note = (
                f"resolved by hand as {action} "
                f"(was {row.status} during {row.direction})"
            )
            direction = "resolve"
        with conn.transaction():
            if row.status == RUNNING:
                # the run was cut short before it could log itself
                conn.execute(tables.log_unfinished(number, INTERRUPTED))
            conn.execute(tables.log_note(row, direction, session.applied_by, note))
            for statement in statements:
                conn.execute(statement)
        logger.info("%s: %s", row.ident, note)
        return Resolution(number, row.ident, action, row.status)


# -- new -------------------------------------------------------------------------
