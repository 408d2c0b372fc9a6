"""Comparing the migration files with the target's history."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from dbamgr.migrations.history import APPLIED, FAILED, HistoryRow
from dbamgr.migrations.lock import LockHolder
from dbamgr.migrations.source import Migration, MigrationSet

# states of a migration, as status reports them
STATE_APPLIED = "applied"
STATE_PENDING = "pending"
STATE_OUT_OF_ORDER = "out-of-order"
STATE_MISSING = "missing-file"
STATE_CHANGED = "checksum-changed"
STATE_FAILED = "failed"
STATE_RUNNING = "interrupted"
STATE_IN_PROGRESS = "running"

PROBLEM_STATES = frozenset({STATE_MISSING, STATE_CHANGED, STATE_FAILED, STATE_RUNNING})


@dataclass(frozen=True)
class MigrationState:
    """One migration as the files and the target's history see it."""

    version: int
    label: str
    name: str
    state: str
    path: str | None
    applied_at: datetime | None = None
    duration_ms: float | None = None
    applied_by: str | None = None
    in_transaction: bool | None = None
    statements_done: int | None = None
    statements_total: int | None = None
    error: str | None = None
    has_down: bool | None = None
    irreversible: str | None = None

    @property
    def ident(self) -> str:
        return f"{self.label}_{self.name}" if self.name else self.label


@dataclass
class StatusReport:
    """What ``dbamgr status`` reports.

    *lock_holder* is the session that held the migration lock when the history
    was read: a runner at work, whose migration in a transaction shows as pending
    until it commits.
    """

    target: str
    migrations: list[MigrationState]
    warnings: list[str] = field(default_factory=list)
    lock_holder: LockHolder | None = None

    def count(self, state: str) -> int:
        return sum(1 for m in self.migrations if m.state == state)

    @property
    def pending(self) -> list[MigrationState]:
        return [
            m for m in self.migrations if m.state in (STATE_PENDING, STATE_OUT_OF_ORDER)
        ]

    @property
    def problems(self) -> list[MigrationState]:
        return [m for m in self.migrations if m.state in PROBLEM_STATES]

    @property
    def summary(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for migration in self.migrations:
            counts[migration.state] = counts.get(migration.state, 0) + 1
        return counts


def compare(
    source: MigrationSet, history: list[HistoryRow], *, locked: bool = False
) -> list[MigrationState]:
    """The state of every migration known to the files or to the history.

    With *locked* (a runner holds the migration lock), a migration whose row says
    ``running`` is running now, not interrupted.
    """
    rows = {row.version: row for row in history}
    newest_applied = max((row.version for row in history), default=None)
    states: list[MigrationState] = []
    for version in sorted(set(rows) | set(source.by_version)):
        migration = source.by_version.get(version)
        row = rows.get(version)
        states.append(_state(migration, row, newest_applied, locked))
    return states


def _state(
    migration: Migration | None,
    row: HistoryRow | None,
    newest_applied: int | None,
    locked: bool,
) -> MigrationState:
    if row is None:
        assert migration is not None
        late = newest_applied is not None and migration.version < newest_applied
        return MigrationState(
            migration.version,
            migration.label,
            migration.name,
            STATE_OUT_OF_ORDER if late else STATE_PENDING,
            str(migration.path),
            has_down=migration.has_down,
            irreversible=migration.irreversible_reason,
        )
    if migration is None:
        state = STATE_MISSING
    elif row.status == FAILED:
        state = STATE_FAILED
    elif row.status != APPLIED:
        state = STATE_IN_PROGRESS if locked else STATE_RUNNING
    elif row.checksum != migration.checksum:
        state = STATE_CHANGED
    else:
        state = STATE_APPLIED
    duration = row.duration.total_seconds() * 1000 if row.duration else None
    return MigrationState(
        row.version,
        row.label,
        row.name,
        state,
        str(migration.path) if migration else None,
        applied_at=row.applied_at,
        duration_ms=duration,
        applied_by=row.applied_by,
        in_transaction=row.in_transaction,
        statements_done=row.statements_done,
        statements_total=row.statements_total,
        error=row.error,
        has_down=migration.has_down if migration else None,
        irreversible=migration.irreversible_reason if migration else None,
    )
