"""What runs for one migration in one direction, as exact SQL text.

A :class:`Plan` is the list of statements the runner sends, in order: the
transaction control, the session settings, the migration's own statements and the
history writes. ``--dry-run`` prints the same plans that a real run executes, so
what is printed is what would run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from dbamgr.config import format_duration
from dbamgr.errors import MigrationError
from dbamgr.migrations.history import HistoryTables
from dbamgr.migrations.source import Migration, Script
from dbamgr.sql import Statement

UP, DOWN = "up", "down"
_TRANSACTION_CONTROL = re.compile(
    r"^(BEGIN|START\s+TRANSACTION|COMMIT|END|ROLLBACK|ABORT)\b(?!\s+ATOMIC)", re.I
)


@dataclass(frozen=True)
class Step:
    """One statement the runner sends."""

    sql: str
    statement: Statement | None = None
    """The migration's own statement this step runs, if it is one."""


@dataclass(frozen=True)
class Plan:
    """Everything that runs to apply or revert one migration."""

    migration: Migration
    direction: str
    script: Script
    steps: list[Step]

    @property
    def in_transaction(self) -> bool:
        return self.script.in_transaction

    def text(self) -> str:
        """The plan as a SQL script, as the dry run prints it."""
        mode = "in one transaction" if self.in_transaction else "statement by statement"
        lines = [
            f"-- {self.migration.ident}: {self.direction}, {mode} ({self.script.path})"
        ]
        lines += [f"{step.sql};" for step in self.steps]
        return "\n".join(lines)


@dataclass(frozen=True)
class Timeouts:
    lock_timeout: float
    statement_timeout: float


def _render(query: sql.Composable, conn: psycopg.Connection[Any] | None) -> str:
    return query.as_string(conn)


def check_transaction_control(migration: Migration, script: Script) -> None:
    """Refuse BEGIN/COMMIT/ROLLBACK inside a script dbamgr wraps in a transaction."""
    if not script.in_transaction:
        return
    for statement in script.statements:
        if _TRANSACTION_CONTROL.match(statement.text):
            keyword = statement.text.split()[0].upper()
            raise MigrationError(
                f"{script.path}:{statement.line}:{statement.column}: {keyword} inside "
                f'migration "{migration.ident}"',
                hint="dbamgr runs each migration in its own transaction: remove the "
                "transaction control, or make the first line of the file "
                "-- dbamgr:no-transaction",
                migration=migration.ident,
                file=str(script.path),
                line=statement.line,
            )


def session_settings(timeouts: Timeouts, *, local: bool) -> list[str]:
    scope = "SET LOCAL" if local else "SET"
    return [
        f"{scope} lock_timeout = '{format_duration(timeouts.lock_timeout)}'",
        f"{scope} statement_timeout = '{format_duration(timeouts.statement_timeout)}'",
    ]


def build_plan(
    migration: Migration,
    direction: str,
    *,
    tables: HistoryTables,
    timeouts: Timeouts,
    applied_by: str,
    conn: psycopg.Connection[Any] | None = None,
) -> Plan:
    """The exact statements that apply (*direction* ``up``) or revert a migration."""
    script = migration.up if direction == UP else migration.down
    if script is None:
        raise MigrationError(f'migration "{migration.ident}" has no down to run')
    check_transaction_control(migration, script)
    own = [Step(statement.text, statement) for statement in script.statements]
    steps: list[Step] = []
    if script.in_transaction:
        steps.append(Step("BEGIN"))
        steps += [Step(text) for text in session_settings(timeouts, local=True)]
        steps += own
        if direction == UP:
            history = [
                tables.insert_applied(migration, applied_by),
                tables.log_from_current(migration, UP),
            ]
        else:
            history = [
                tables.log_down_in_transaction(migration, applied_by),
                tables.delete(migration.version),
            ]
        steps += [Step(_render(query, conn)) for query in history]
        steps.append(Step("COMMIT"))
    else:
        steps += [Step(text) for text in session_settings(timeouts, local=False)]
        total = len(own)
        if direction == UP:
            start = tables.insert_running(migration, applied_by, total)
        else:
            start = tables.mark_running_down(migration.version, total)
        steps.append(Step(_render(start, conn)))
        for done, step in enumerate(own, start=1):
            steps.append(step)
            steps.append(
                Step(_render(tables.mark_progress(migration.version, done), conn))
            )
        if direction == UP:
            finish = [
                tables.mark_applied(migration.version),
                tables.log_from_current(migration, UP),
            ]
        else:
            finish = [
                tables.log_from_current(migration, DOWN),
                tables.delete(migration.version),
            ]
        steps += [Step(_render(query, conn)) for query in finish]
    steps.append(Step("RESET ALL"))
    return Plan(migration, direction, script, steps)
