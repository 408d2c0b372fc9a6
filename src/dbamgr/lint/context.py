"""The state the rules read while the lint walks the migrations in order.

:class:`Schema` is what the lint knows about the database at the current
statement: the tables and columns the earlier migrations created (and, with a
live catalog, what the database holds), and which relations the current migration
created, since a statement on those carries no locking hazard. :class:`Context`
is handed to every rule for one statement; the rules report through it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pglast.keywords import RESERVED_KEYWORDS, TYPE_FUNC_NAME_KEYWORDS
from psycopg import sql

from dbamgr.lint.model import (
    DATA_LOSS,
    LOCK,
    SIZE_AWARE,
    Finding,
    Lock,
    LockClaim,
    Rule,
    Severity,
)
from dbamgr.lint.nodes import ColumnType, Node

if TYPE_CHECKING:
    from dbamgr.lint.catalog import LiveCatalog, TableStats

_PLAIN = re.compile(r"^[a-z_][a-z0-9_$]*$")
_KEYWORDS = frozenset(RESERVED_KEYWORDS) | frozenset(TYPE_FUNC_NAME_KEYWORDS)

# Rough throughput of the work a statement does while it holds its lock, used
# for estimates only: bytes per second (rows per second for "rows").
THROUGHPUT = {
    "rewrite": 60e6,
    "scan": 250e6,
    "index": 40e6,
    "rows": 30e3,
}


def ident(name: str) -> str:
    """*name* (possibly ``schema.name``) as SQL, quoted only where it must be."""
    parts = name.split(".") if "." in name and '"' not in name else [name]
    out = []
    for part in parts:
        if _PLAIN.match(part) and part not in _KEYWORDS:
            out.append(part)
        else:
            out.append(sql.Identifier(part).as_string(None))
    return ".".join(out)


def literal(text: str) -> str:
    """*text* as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


@dataclass
class TableState:
    """What the lint knows of one table from the migrations read so far."""

    columns: dict[str, ColumnType] = field(default_factory=dict)
    not_null: set[str] = field(default_factory=set)
    checks: dict[str, tuple[str, bool]] = field(default_factory=dict)
    """Constraints ``col IS NOT NULL``: name -> (column, validated)."""


class Schema:
    """The schema as the migrations build it, over an optional live catalog."""

    def __init__(self, live: LiveCatalog | None = None) -> None:
        self.tables: dict[str, TableState] = {}
        self.live = live
        self.created: set[str] = set()
        """Relations created earlier in the current script's migration."""
        self.created_by_up: set[str] = set()
        """While linting a down: the relations its up creates."""
        self.readonly = False
        self.indexes: dict[str, str] = {}
        """Index name -> table, for the indexes the migrations created."""
        self.index_columns: dict[str, list[str]] = {}
        """Index name -> its plain columns, for the indexes the migrations created."""

    # -- names -------------------------------------------------------------

    @staticmethod
    def key(name: str) -> str:
        """The name relations are known by (``public.`` dropped)."""
        return name.removeprefix("public.")

    def begin_migration(self) -> None:
        """Start the up of a new migration: nothing is new yet."""
        self.created = set()
        self.created_by_up = set()
        self.readonly = False

    def begin_down(self, up_created: set[str]) -> None:
        """Start a down: the relations its up created are noted, nothing changes."""
        self.created_by_up = set(up_created)
        self.created = set()
        self.readonly = True

    def is_new(self, name: str) -> bool:
        """Whether *name* was created earlier in the same migration."""
        return self.key(name) in self.created

    def mark_created(self, name: str) -> None:
        """Remember that the current migration created *name*."""
        self.created.add(self.key(name))

    # -- tables ------------------------------------------------------------

    def table(self, name: str) -> TableState | None:
        """What the migrations so far say about table *name*."""
        return self.tables.get(self.key(name))

    def ensure(self, name: str) -> TableState | None:
        """The state of *name* to update (None when updates are off)."""
        if self.readonly:
            return None
        return self.tables.setdefault(self.key(name), TableState())

    def forget(self, name: str) -> None:
        """Forget a dropped table."""
        if not self.readonly:
            self.tables.pop(self.key(name), None)

    def rename(self, old: str, new: str) -> None:
        """Follow a table to its new name."""
        if self.readonly:
            return
        state = self.tables.pop(self.key(old), None)
        if state is not None:
            schema = old.rpartition(".")[0]
            self.tables[self.key(f"{schema}.{new}" if schema else new)] = state
        if self.key(old) in self.created:
            self.created.add(self.key(new))

    def column_type(self, table: str, column: str) -> ColumnType | None:
        """The type of *column*, from the migrations or else the live catalog."""
        state = self.table(table)
        if state is not None and column in state.columns:
            return state.columns[column]
        if self.live is not None:
            return self.live.column_type(table, column)
        return None

    def has_valid_not_null_check(self, table: str, column: str) -> bool:
        """Whether a validated ``CHECK (column IS NOT NULL)`` exists on *table*."""
        state = self.table(table)
        if state is not None:
            for check_column, validated in state.checks.values():
                if check_column == column and validated:
                    return True
        if self.live is not None:
            return self.live.has_valid_not_null_check(table, column)
        return False

    def index_table(self, index: str) -> str | None:
        """The table an index belongs to, if known."""
        table = self.indexes.get(self.key(index))
        if table is None and self.live is not None:
            table = self.live.index_table(index)
        return table

    def nullable_index_columns(self, index: str) -> list[str] | None:
        """The columns of *index* that may hold NULL (None: unknown)."""
        key = self.key(index)
        table = self.indexes.get(key)
        if table is not None and key in self.index_columns:
            state = self.table(table)
            known = state.not_null if state is not None else set()
            return [c for c in self.index_columns[key] if c not in known]
        if self.live is not None:
            return self.live.nullable_index_columns(index)
        return None

    def stats(self, name: str) -> TableStats | None:
        """The live size of *name*, unless it is new or there is no database."""
        if self.live is None or self.is_new(name):
            return None
        return self.live.stats(name)


@dataclass
class Settings:
    """What the lint is told: server version, size thresholds."""

    pg_version: int = 18
    warn_after: float = 1.0
    error_after: float = 10.0


class Context:
    """One statement being linted; rules read it and report through it."""

    def __init__(
        self,
        rules: dict[str, Rule],
        schema: Schema,
        settings: Settings,
        *,
        file: str,
        direction: str,
        migration: str | None,
    ) -> None:
        self.rules = rules
        self.schema = schema
        self.settings = settings
        self.file = file
        self.direction = direction
        self.migration = migration
        self.in_transaction = True
        self.text = ""
        self.line = 1
        self.column = 1
        self.node: Node = {}
        self.findings: list[Finding] = []
        self.locks: list[LockClaim] = []
        self.estimate: float | None = None

    @property
    def pg(self) -> int:
        """The PostgreSQL major version the lint judges for."""
        return self.settings.pg_version

    def start(self, text: str, line: int, column: int, node: Node) -> None:
        """Begin a new statement."""
        self.text, self.line, self.column, self.node = text, line, column, node
        self.findings = []
        self.locks = []
        self.estimate = None

    def is_new(self, relation: str) -> bool:
        """Whether *relation* was created earlier in the same migration."""
        return self.schema.is_new(relation)

    def lock(
        self,
        relation: str,
        level: Lock,
        *,
        rewrite: bool = False,
        scan: bool = False,
    ) -> None:
        """Record that the statement takes *level* on *relation*."""
        new = self.is_new(relation)
        for index, claim in enumerate(self.locks):
            if claim.relation == relation:
                self.locks[index] = LockClaim(
                    relation,
                    max(claim.lock, level),
                    claim.rewrite or rewrite,
                    claim.scan or scan,
                    new,
                )
                return
        self.locks.append(LockClaim(relation, level, rewrite, scan, new))

    def report(
        self,
        rule_id: str,
        message: str,
        *,
        relation: str | None = None,
        alternative: str | None = None,
        work: str | None = None,
        severity: Severity | None = None,
        why: str | None = None,
        at: tuple[int, int] | None = None,
    ) -> None:
        """Add a finding of *rule_id* for the current statement.

        *work* says what the statement does to *relation* while it holds its lock
        (``rewrite``, ``scan``, ``index``, ``rows``): with live sizes, the severity
        then follows the estimated duration. *at* is the (line, column) in the file
        the finding points to, when not the statement's start.
        """
        rule = self.rules[rule_id]
        level = severity or rule.severity
        line, column = at or (self.line, self.column)
        finding = Finding(
            rule.id,
            level,
            rule.hazard,
            self.file,
            line,
            column,
            self.text,
            message,
            why or rule.why,
            alternative,
            relation,
            self.migration,
            self.direction,
        )
        if relation is not None and rule.hazard in SIZE_AWARE:
            self._size(finding, relation, work)
        self.findings.append(finding)

    def _size(self, finding: Finding, relation: str, work: str | None) -> None:
        stats = self.schema.stats(relation)
        if stats is None:
            return
        finding.table_bytes = stats.total_bytes
        finding.table_rows = stats.rows
        if work is not None:
            amount = stats.rows if work == "rows" else stats.bytes_for(work)
            finding.estimate_seconds = amount / THROUGHPUT[work]
            self.estimate = max(self.estimate or 0.0, finding.estimate_seconds)
        if stats.rows == 0:
            finding.severity = Severity.NOTE
            finding.message += f' ("{relation}" is empty now)'
            return
        seconds = finding.estimate_seconds
        if seconds is None or finding.hazard in (DATA_LOSS, LOCK):
            return
        if seconds >= self.settings.error_after:
            finding.severity = Severity.ERROR
        elif seconds >= self.settings.warn_after:
            finding.severity = Severity.WARNING
        else:
            finding.severity = Severity.NOTE


def join_sql(statements: Iterable[str]) -> str:
    """Statements as a script, one per line, each ending with a semicolon."""
    return "\n".join(s.rstrip().rstrip(";") + ";" for s in statements)
