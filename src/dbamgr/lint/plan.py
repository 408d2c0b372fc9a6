"""``dbamgr plan``: what the pending migrations of a target will do, for review.

For each pending migration: its statements in order, the locks they take with the
sizes of the tables, estimated durations, how long each lock is held (to the end
of the transaction, or of the statement outside one), the rollback steps and a
verdict; for the whole change, the tables it touches and the downtime risk.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dbamgr.config import Project
from dbamgr.lint.analyze import UP, Linter
from dbamgr.lint.catalog import TableStats
from dbamgr.lint.context import THROUGHPUT, Schema
from dbamgr.lint.model import Finding, Lock, ScriptReport, Severity, StatementReport
from dbamgr.lint.project import lint_config, live_catalog
from dbamgr.migrations.source import Migration, load_migrations
from dbamgr.target import Target

SAFE, REVIEW, BLOCKED = "safe", "review", "blocked"


@dataclass
class LockStep:
    """A lock one statement takes, with the table's size."""

    relation: str
    lock: str
    effect: str
    rewrite: bool
    scan: bool
    rows: int | None = None
    bytes: int | None = None


@dataclass
class PlannedStatement:
    """One statement of a pending migration."""

    line: int
    kind: str
    sql: str
    in_transaction: bool
    locks: list[LockStep]
    estimate_seconds: float
    findings: list[Finding]


@dataclass
class LockWindow:
    """How long a lock on a table stays held."""

    relation: str
    lock: str
    effect: str
    from_line: int
    seconds: float


@dataclass
class PlannedMigration:
    """One pending migration, ready for review."""

    version: int
    ident: str
    file: str
    in_transaction: bool
    statements: list[PlannedStatement]
    windows: list[LockWindow]
    estimate_seconds: float
    rollback: list[str]
    rollback_file: str | None
    irreversible: str | None
    verdict: str
    data_loss: bool


@dataclass
class TableImpact:
    """A table the change touches: its size and the strongest lock it gets."""

    relation: str
    lock: str
    effect: str
    seconds_locked: float
    rows: int | None
    bytes: int | None


@dataclass
class ChangePlan:
    """The review of every pending migration of a target."""

    target: str
    environment: str
    protected: bool
    pg_version: int
    migrations: list[PlannedMigration] = field(default_factory=list)
    tables: list[TableImpact] = field(default_factory=list)
    estimate_seconds: float = 0.0
    blocking_seconds: float = 0.0
    """Longest time reads or writes of one table wait."""
    verdict: str = SAFE
    counts: dict[str, int] = field(default_factory=dict)


def _duration(statement: StatementReport, schema: Schema) -> float:
    seconds = statement.estimate_seconds or 0.0
    for claim in statement.locks:
        stats = schema.stats(claim.relation) if not claim.new_relation else None
        if stats is None:
            continue
        if claim.rewrite:
            seconds = max(seconds, stats.bytes_for("rewrite") / THROUGHPUT["rewrite"])
        elif claim.scan:
            seconds = max(seconds, stats.bytes_for("scan") / THROUGHPUT["scan"])
    return seconds


def _step(
    claim_relation: str, lock: Lock, rewrite: bool, scan: bool, stats: TableStats | None
) -> LockStep:
    return LockStep(
        claim_relation,
        lock.label,
        lock.effect,
        rewrite,
        scan,
        stats.rows if stats else None,
        stats.total_bytes if stats else None,
    )


def _plan_migration(
    migration: Migration, up: ScriptReport, schema: Schema
) -> PlannedMigration:
    statements: list[PlannedStatement] = []
    durations: list[float] = []
    for statement in up.statements:
        seconds = _duration(statement, schema)
        durations.append(seconds)
        locks = [
            _step(
                c.relation,
                c.lock,
                c.rewrite,
                c.scan,
                None if c.new_relation else schema.stats(c.relation),
            )
            for c in statement.locks
        ]
        statements.append(
            PlannedStatement(
                statement.line,
                statement.kind,
                statement.text,
                statement.in_transaction,
                locks,
                seconds,
                [f for f in statement.findings if f.suppressed is None],
            )
        )
    windows = _windows(up, durations)
    findings = [f for s in statements for f in s.findings]
    data_loss = any(
        f.is_data_loss and f.approved is None for s in up.statements for f in s.findings
    )
    verdict = SAFE
    if any(f.severity >= Severity.WARNING for f in findings):
        verdict = REVIEW
    if any(f.severity is Severity.ERROR for f in findings):
        verdict = BLOCKED
    down = migration.down
    rollback = [s.text for s in down.statements] if down is not None else []
    return PlannedMigration(
        migration.version,
        migration.ident,
        up.file,
        up.in_transaction,
        statements,
        windows,
        sum(durations),
        rollback,
        str(down.path) if down is not None and migration.has_down else None,
        migration.irreversible_reason,
        verdict,
        data_loss,
    )


def _windows(up: ScriptReport, durations: list[float]) -> list[LockWindow]:
    """Each lock level taken on an existing table, and how long it stays held.

    In a transaction a lock is held from the statement that takes it to COMMIT;
    outside one, for the statement alone.
    """
    windows: dict[tuple[str, Lock], LockWindow] = {}
    for position, statement in enumerate(up.statements):
        for claim in statement.locks:
            if claim.new_relation or claim.lock < Lock.SHARE_UPDATE_EXCLUSIVE:
                continue
            key = (claim.relation, claim.lock)
            if statement.in_transaction:
                if key not in windows:
                    windows[key] = LockWindow(
                        claim.relation,
                        claim.lock.label,
                        claim.lock.effect,
                        statement.line,
                        sum(durations[position:]),
                    )
            elif key in windows:
                windows[key].seconds += durations[position]
            else:
                windows[key] = LockWindow(
                    claim.relation,
                    claim.lock.label,
                    claim.lock.effect,
                    statement.line,
                    durations[position],
                )
    return list(windows.values())


def plan_changes(
    project: Project, target: Target, *, pg_version: int | None = None
) -> ChangePlan:
    """Review the pending migrations of *target*, in the order ``up`` runs them."""
    from dbamgr.migrations import status

    source = load_migrations(project.migrations_dir)
    wanted = {m.version for m in status(project, target).pending}
    with live_catalog(target) as catalog:
        version = pg_version or (catalog.major_version if catalog else None)
        config = lint_config(project.config.lint, pg_version=version)
        schema = Schema(catalog)
        linter = Linter(config, schema)
        result = ChangePlan(
            target.display, target.name, target.protected, config.settings.pg_version
        )
        for migration in source.migrations:
            scripts = linter.lint_migration(migration)
            if migration.version not in wanted:
                continue
            up = next(s for s in scripts if s.direction == UP)
            result.migrations.append(_plan_migration(migration, up, schema))
        _summarize(result, schema)
    return result


def _level(label: str) -> Lock:
    return Lock[label.replace(" ", "_")]


def _summarize(result: ChangePlan, schema: Schema) -> None:
    impacts: dict[str, TableImpact] = {}
    counts = {s.label: 0 for s in sorted(Severity, reverse=True)}
    for migration in result.migrations:
        result.estimate_seconds += migration.estimate_seconds
        strongest: dict[str, LockWindow] = {}
        for window in migration.windows:
            current = strongest.get(window.relation)
            if current is None or _level(current.lock) < _level(window.lock):
                strongest[window.relation] = window
        for relation, window in strongest.items():
            held = max(w.seconds for w in migration.windows if w.relation == relation)
            impact = impacts.get(relation)
            if impact is None:
                stats = schema.stats(relation)
                impacts[relation] = TableImpact(
                    relation,
                    window.lock,
                    window.effect,
                    held,
                    stats.rows if stats else None,
                    stats.total_bytes if stats else None,
                )
                continue
            impact.seconds_locked += held
            if _level(impact.lock) < _level(window.lock):
                impact.lock, impact.effect = window.lock, window.effect
        for statement in migration.statements:
            for finding in statement.findings:
                counts[finding.severity.label] += 1
    result.tables = sorted(impacts.values(), key=lambda t: -t.seconds_locked)
    blocking = [t.seconds_locked for t in result.tables if _level(t.lock) >= Lock.SHARE]
    result.blocking_seconds = max(blocking, default=0.0)
    result.counts = counts
    verdicts = [m.verdict for m in result.migrations]
    if BLOCKED in verdicts:
        result.verdict = BLOCKED
    elif REVIEW in verdicts:
        result.verdict = REVIEW
    if result.protected and any(m.data_loss for m in result.migrations):
        result.verdict = BLOCKED
