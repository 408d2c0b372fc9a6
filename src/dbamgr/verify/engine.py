"""``dbamgr verify``: prove that every down restores the schema its up changed.

On a scratch database, for each migration in order: snapshot; up (traced);
snapshot; down (traced) — the schema must equal the one before the up, and the
tables that existed before keep their rows; up again — the schema must equal the
one after the first up. Seed files, if the project has any, are loaded as soon as
the schema can take them, and serve as the test data.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from dbamgr.config import Project
from dbamgr.db import connect
from dbamgr.errors import MigrationError, UsageError
from dbamgr.log import mask_url
from dbamgr.migrations.plan import DOWN, UP, Plan, build_plan
from dbamgr.migrations.runner import Session
from dbamgr.migrations.scratch import scratch_target
from dbamgr.migrations.source import Migration, load_migrations, parse_version
from dbamgr.schema.capture import install_capture
from dbamgr.schema.diff import Change, diff_snapshots
from dbamgr.schema.incremental import SnapshotCache
from dbamgr.schema.snapshot import Snapshot
from dbamgr.verify.data import RowCache, compare_fingerprints, data_tables
from dbamgr.verify.locks import (
    LockTracer,
    StatementTrace,
    TableLock,
    install_lock_trace,
    summarize,
)
from dbamgr.verify.seeds import Seeds

logger = logging.getLogger(__name__)

PASSED, FAILED, APPLIED_ONLY = "passed", "failed", "irreversible"
# how the failures of a schema check begin (a report shows the diff under them)
DOWN_MISMATCH = "the down does not restore the schema"
REUP_MISMATCH = "the up run again gives another schema"


@dataclass
class PhaseTrace:
    """One traced run of an up or a down."""

    seconds: float
    in_transaction: bool
    statements: list[StatementTrace] = field(default_factory=list)
    locks: list[TableLock] = field(default_factory=list)


@dataclass
class MigrationCheck:
    """The verification of one migration."""

    version: int
    ident: str
    path: str
    status: str = PASSED
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    up: PhaseTrace | None = None
    down: PhaseTrace | None = None
    reup_seconds: float | None = None
    down_diff: list[Change] = field(default_factory=list)
    reup_diff: list[Change] = field(default_factory=list)
    data_problems: list[str] = field(default_factory=list)
    # rows in the tables that existed before the up (None: no data check ran):
    # with none, a down that deletes rows cannot be caught
    rows_checked: int | None = None

    def fail(self, reason: str) -> None:
        self.status = FAILED
        self.failures.append(reason)


@dataclass
class VerifyReport:
    """What ``dbamgr verify`` found."""

    server: str
    migrations: list[MigrationCheck] = field(default_factory=list)
    applied_first: int = 0
    seeds_loaded: list[str] = field(default_factory=list)
    # seed files that never loaded, each with the reason
    seed_problems: list[str] = field(default_factory=list)
    # the migrations left unchecked after an up or down failed
    not_verified: list[str] = field(default_factory=list)
    seconds: float = 0.0
    # how the schema was read after each run: "captured" (event triggers say
    # what changed), "scanned" (the catalogs are scanned for it) or "full"
    changes_found_by: str = "scanned"
    # whole reads, partial reads, and the partial reads that had to scan
    snapshot_reads: dict[str, int] = field(default_factory=dict)

    @property
    def failed(self) -> list[MigrationCheck]:
        return [m for m in self.migrations if m.status == FAILED]

    @property
    def ok(self) -> bool:
        return not self.failed and not self.seed_problems

    @property
    def checked_empty(self) -> list[MigrationCheck]:
        """The migrations whose data check found no rows in the tables that
        existed before them: their downs could delete rows unseen."""
        return [m for m in self.migrations if m.rows_checked == 0]


ProgressHandler = Callable[[int, int, Migration], None]
CheckHandler = Callable[[MigrationCheck], None]


class _Verifier:
    def __init__(
        self,
        project: Project,
        session: Session,
        report: VerifyReport,
        snapshots: str = "incremental",
        capture: bool = True,
    ) -> None:
        self.project = project
        self.session = session
        self.report = report
        schema = project.config.migrations.history_schema
        # Snapshots are read on a connection of their own: psycopg drops every
        # prepared statement of a connection that runs DDL, and planning the
        # catalog query costs more than running it.
        self.reader = connect(session.target.url, purpose="verify snapshots")
        changes = install_capture(session.conn, schema) if capture else None
        self.cache = SnapshotCache(
            self.reader,
            (schema,),
            mode=snapshots,
            capture_schema=None if changes is None else schema,
        )
        self.tracer = LockTracer(
            session.target.url, install_lock_trace(session.conn, schema), changes
        )
        self.rows = RowCache(self.reader)
        self.plans: dict[tuple[int, str], Plan] = {}

    def snapshot(self) -> Snapshot:
        """The whole schema, read afresh."""
        return self.cache.full()

    def run_and_snapshot(
        self, migration: Migration, direction: str, *, detailed: bool = True
    ) -> tuple[PhaseTrace, Snapshot]:
        """Run one direction with the lock trace (per statement if *detailed*,
        else only what the whole run locked); return it and the new schema,
        re-reading only what the run may have changed."""
        self.cache.start()
        before = self.cache.current
        assert before is not None, "take a snapshot before the first run"
        self.tracer.watch(before, detailed=detailed)
        phase = self.run(migration, direction, traced=True)
        written = self.tracer.written()
        if written is None:
            self.rows.forget(None)
        else:
            known = before.catalog.get("rel", {})
            self.rows.forget({known[oid][1] for oid in written if oid in known})
        return phase, self.cache.refresh(self.tracer.touched())

    def plan(self, migration: Migration, direction: str) -> Plan:
        """The plan of one direction, built once (the up runs twice)."""
        key = (migration.version, direction)
        if key not in self.plans:
            self.plans[key] = build_plan(
                migration,
                direction,
                tables=self.session.tables,
                timeouts=self.session.timeouts,
                applied_by=self.session.applied_by,
            )
        return self.plans[key]

    def run(self, migration: Migration, direction: str, traced: bool) -> PhaseTrace:
        plan = self.plan(migration, direction)
        self.session.observer = self.tracer if traced else None
        try:
            seconds = self.session.run(plan)
        finally:
            self.session.observer = None
        if not traced:
            return PhaseTrace(seconds, plan.in_transaction)
        statements = self.tracer.statements
        return PhaseTrace(
            seconds,
            plan.in_transaction,
            statements,
            summarize(statements, plan.in_transaction),
        )

    def check(
        self, migration: Migration, before: Snapshot, data_check: bool
    ) -> tuple[MigrationCheck, Snapshot | None]:
        """Verify one migration starting from the schema *before*; return the
        result and the schema after it (None when verify cannot go on)."""
        check = MigrationCheck(migration.version, migration.ident, str(migration.path))
        tables = data_tables(before) if data_check else []
        rows_before = self.rows.get(tables)
        if tables:
            check.rows_checked = sum(f.rows for f in rows_before.values())

        try:
            check.up, after_up = self.run_and_snapshot(migration, UP)
        except MigrationError as exc:
            check.fail(f"up failed: {exc.message}")
            return check, None

        if not migration.has_down:
            reason = migration.irreversible_reason
            if reason is None:
                check.fail(
                    "it has no down (or only comments in it): write one, or mark the "
                    "up with -- dbamgr:irreversible <reason>"
                )
            else:
                check.status = APPLIED_ONLY
                check.notes.append(f"irreversible ({reason}): the down was not run")
            return check, after_up

        try:
            check.down, after_down = self.run_and_snapshot(migration, DOWN)
        except MigrationError as exc:
            check.fail(f"down failed: {exc.message}")
            return check, None
        check.down_diff = diff_snapshots(before, after_down).changes
        if check.down_diff:
            check.fail(
                f"{DOWN_MISMATCH}: {len(check.down_diff)} "
                "difference(s) from the schema before the up"
            )
        declared = _data_loss_reason(migration)
        if declared is not None:
            check.notes.append(f"data check skipped: declares data loss ({declared})")
        elif tables:
            remaining = set(data_tables(after_down))
            rows_after = self.rows.get([t for t in tables if t in remaining])
            check.data_problems = compare_fingerprints(rows_before, rows_after)
            if check.data_problems:
                check.fail(
                    "rows changed through up and down: "
                    + "; ".join(check.data_problems)
                )

        try:
            reup, after_reup = self.run_and_snapshot(migration, UP, detailed=False)
        except MigrationError as exc:
            check.fail(f"the up failed when run again after the down: {exc.message}")
            return check, None
        check.reup_seconds = reup.seconds
        check.reup_diff = diff_snapshots(after_up, after_reup).changes
        if check.reup_diff:
            check.fail(
                f"{REUP_MISMATCH}: {len(check.reup_diff)} "
                "difference(s) from the first up"
            )
        return check, after_reup


def _data_loss_reason(migration: Migration) -> str | None:
    for script in (migration.up, migration.down):
        if script is not None:
            directive = script.directive("data-loss")
            if directive is not None:
                return directive.argument or "no reason given"
    return None


def verify(
    project: Project,
    *,
    server_url: str | None = None,
    from_version: str | None = None,
    data_check: bool = True,
    snapshots: str = "incremental",
    capture: bool = True,
    on_progress: ProgressHandler | None = None,
    on_check: CheckHandler | None = None,
) -> VerifyReport:
    """Verify the project's migrations on a scratch database (see the module doc).

    With *from_version*, the migrations before it are applied once without checks.
    *snapshots* ``full`` reads the whole schema at every step instead of what each
    step changed (slower; see :mod:`dbamgr.schema.incremental`). *capture* false
    finds what changed by scanning the catalogs even where event triggers could
    say it (see :mod:`dbamgr.schema.capture`).
    *on_progress* is called before each migration is checked, *on_check* with
    each result as soon as it is known (a report can show it while verify goes on).
    Stops at the first migration whose up or down fails (later ones would build on
    a broken state); schema and data mismatches are recorded and verify goes on.
    """
    started = time.perf_counter()
    source = load_migrations(project.migrations_dir)
    first = parse_version(from_version) if from_version else None
    if first is not None and first not in source.by_version:
        raise UsageError(
            f'--from "{from_version}": no migration has that version',
            hint="run `dbamgr status` to see the versions",
        )
    earlier = [m for m in source.migrations if first is not None and m.version < first]
    checked = [m for m in source.migrations if first is None or m.version >= first]

    with scratch_target(
        project, server_url, prefix="dbamgr_verify", migrations=source.migrations
    ) as target:
        report = VerifyReport(mask_url(server_url) if server_url else "local server")
        session = Session(target, project.config.migrations, purpose="verify")
        verifier: _Verifier | None = None
        try:
            session.lock_and_prepare()
            seeds = Seeds(project.seeds_dir)
            verifier = _Verifier(project, session, report, snapshots, capture)
            for migration in earlier:
                verifier.run(migration, UP, traced=False)
                seeds.load_ready(session.conn)
            report.applied_first = len(earlier)
            snapshot = verifier.snapshot()
            for position, migration in enumerate(checked, start=1):
                if on_progress is not None:
                    on_progress(position, len(checked), migration)
                if seeds.load_ready(session.conn):
                    verifier.rows.forget(None)
                    snapshot = verifier.snapshot()
                check, after = verifier.check(migration, snapshot, data_check)
                report.migrations.append(check)
                if on_check is not None:
                    on_check(check)
                if after is None:
                    report.not_verified = [m.ident for m in checked[position:]]
                    break
                snapshot = after
            else:
                # a seed file may fit only the final schema: try it, so that
                # only the files that fit no schema at all are reported
                seeds.load_ready(session.conn)
                report.seed_problems = seeds.problems()
            report.seeds_loaded = seeds.loaded
        finally:
            if verifier is not None:
                cache = verifier.cache
                report.changes_found_by = (
                    "full" if snapshots == "full" else cache.changes_found_by
                )
                report.snapshot_reads = {
                    "full": cache.full_reads,
                    "partial": cache.partial_reads,
                    "scanned": cache.scans,
                }
            session.close()
            if verifier is not None:
                verifier.reader.close()
    report.seconds = time.perf_counter() - started
    return report
