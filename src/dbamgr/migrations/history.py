"""The history tables, in a schema of their own (default ``dbamgr``).

``schema_migrations`` holds one row per migration that is applied, or that failed or
was interrupted outside a transaction. ``schema_migrations_log`` keeps every up and
down that finished, every one run outside a transaction that failed (when it
failed) or was interrupted (when it is resolved), and every resolution, for the
``history`` command and for audits. A run in a transaction that fails leaves no
trace: it changed nothing.

All the SQL that writes them is built here, as text with the values inlined, so that
``--dry-run`` can print exactly what runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from dbamgr.migrations.source import Migration

LAYOUT_VERSION = 2
"""2: the log has ``status`` and ``error`` (added to a layout 1 log on first use)."""

APPLIED, RUNNING, FAILED = "applied", "running", "failed"

# the status of a log entry
DONE, INTERRUPTED = "done", "interrupted"


@dataclass(frozen=True)
class HistoryTables:
    """Names of the history tables, and the SQL that reads and writes them."""

    schema: str
    table: str

    @property
    def current(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.table)

    @property
    def log(self) -> sql.Identifier:
        return sql.Identifier(self.schema, f"{self.table}_log")

    def create(self) -> list[sql.Composed]:
        """Statements that create the schema and tables if they are missing."""
        comment = f"dbamgr migration history, layout {LAYOUT_VERSION}"
        return [
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                sql.Identifier(self.schema)
            ),
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} ("
                "version numeric PRIMARY KEY, "
                "label text NOT NULL, "
                "name text NOT NULL, "
                "checksum text NOT NULL, "
                "status text NOT NULL "
                "CHECK (status IN ('applied', 'running', 'failed')), "
                "direction text NOT NULL DEFAULT 'up' "
                "CHECK (direction IN ('up', 'down')), "
                "in_transaction boolean NOT NULL, "
                "applied_at timestamptz NOT NULL DEFAULT now(), "
                "started_at timestamptz NOT NULL DEFAULT now(), "
                "duration interval, "
                "applied_by text NOT NULL, "
                "db_role text NOT NULL DEFAULT current_user, "
                "statements_done integer NOT NULL DEFAULT 0, "
                "statements_total integer NOT NULL DEFAULT 0, "
                "error text)"
            ).format(self.current),
            sql.SQL("COMMENT ON TABLE {} IS {}").format(
                self.current, sql.Literal(comment)
            ),
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} ("
                "id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
                "version numeric NOT NULL, "
                "label text NOT NULL, "
                "name text NOT NULL, "
                "direction text NOT NULL, "
                "checksum text NOT NULL, "
                "in_transaction boolean NOT NULL, "
                "started_at timestamptz NOT NULL, "
                "duration interval, "
                "applied_by text NOT NULL, "
                "db_role text NOT NULL DEFAULT current_user, "
                "note text, "
                f"{_LOG_STATUS}, "
                "error text)"
            ).format(self.log),
            self._upgrade_log(),
        ]

    def _upgrade_log(self) -> sql.Composed:
        """Add the columns of layout 2 to a log of layout 1, only if missing: an
        ALTER TABLE would wait for every reader of the log, even with IF NOT
        EXISTS."""
        log = self.log.as_string(None)
        return sql.SQL(
            "DO $upgrade$ BEGIN IF NOT EXISTS (SELECT FROM pg_attribute "
            "WHERE attrelid = {}::regclass AND attname = 'status' "
            "AND NOT attisdropped) THEN "
            "ALTER TABLE {} ADD COLUMN " + _LOG_STATUS + ", ADD COLUMN error text; "
            "END IF; END $upgrade$"
        ).format(sql.Literal(log), self.log)

    # -- writes for a migration run in one transaction --------------------------

    def insert_applied(self, migration: Migration, applied_by: str) -> sql.Composed:
        return sql.SQL(
            "INSERT INTO {} (version, label, name, checksum, status, in_transaction, "
            "applied_at, started_at, duration, applied_by, statements_done, "
            "statements_total) VALUES ({}, {}, {}, {}, 'applied', true, now(), now(), "
            "clock_timestamp() - now(), {}, {}, {})"
        ).format(
            self.current,
            *_identity(migration),
            sql.Literal(migration.checksum),
            sql.Literal(applied_by),
            sql.Literal(len(migration.up.statements)),
            sql.Literal(len(migration.up.statements)),
        )

    def log_from_current(self, migration: Migration, direction: str) -> sql.Composed:
        """Copy the migration's current row into the log (for an up, or before the
        row of a down run outside a transaction is deleted)."""
        return sql.SQL(
            "INSERT INTO {} (version, label, name, direction, checksum, "
            "in_transaction, "
            "started_at, duration, applied_by) SELECT version, label, name, {}, "
            "checksum, in_transaction, started_at, clock_timestamp() - started_at, "
            "applied_by FROM {} WHERE version = {}"
        ).format(
            self.log,
            sql.Literal(direction),
            self.current,
            sql.Literal(migration.version),
        )

    def log_down_in_transaction(
        self, migration: Migration, applied_by: str
    ) -> sql.Composed:
        return sql.SQL(
            "INSERT INTO {} (version, label, name, direction, checksum, "
            "in_transaction, "
            "started_at, duration, applied_by) VALUES ({}, {}, {}, 'down', {}, true, "
            "now(), clock_timestamp() - now(), {})"
        ).format(
            self.log,
            *_identity(migration),
            sql.Literal(migration.checksum),
            sql.Literal(applied_by),
        )

    def delete(self, version: int) -> sql.Composed:
        return sql.SQL("DELETE FROM {} WHERE version = {}").format(
            self.current, sql.Literal(version)
        )

    # -- writes for a migration run statement by statement ----------------------

    def insert_running(
        self, migration: Migration, applied_by: str, total: int
    ) -> sql.Composed:
        return sql.SQL(
            "INSERT INTO {} (version, label, name, checksum, status, direction, "
            "in_transaction, applied_at, started_at, applied_by, statements_total) "
            "VALUES ({}, {}, {}, {}, 'running', 'up', false, clock_timestamp(), "
            "clock_timestamp(), {}, {})"
        ).format(
            self.current,
            *_identity(migration),
            sql.Literal(migration.checksum),
            sql.Literal(applied_by),
            sql.Literal(total),
        )

    def mark_running_down(self, version: int, total: int) -> sql.Composed:
        return sql.SQL(
            "UPDATE {} SET status = 'running', direction = 'down', "
            "started_at = clock_timestamp(), statements_done = 0, "
            "statements_total = {}, error = NULL WHERE version = {}"
        ).format(self.current, sql.Literal(total), sql.Literal(version))

    def mark_progress(self, version: int, done: int) -> sql.Composed:
        return sql.SQL("UPDATE {} SET statements_done = {} WHERE version = {}").format(
            self.current, sql.Literal(done), sql.Literal(version)
        )

    def mark_applied(self, version: int) -> sql.Composed:
        return sql.SQL(
            "UPDATE {} SET status = 'applied', direction = 'up', "
            "duration = clock_timestamp() - started_at, "
            "statements_done = statements_total, error = NULL WHERE version = {}"
        ).format(self.current, sql.Literal(version))

    def mark_failed(self, version: int, error: str) -> sql.Composed:
        return sql.SQL(
            "UPDATE {} SET status = 'failed', error = {} WHERE version = {}"
        ).format(self.current, sql.Literal(error), sql.Literal(version))

    def log_unfinished(self, version: int, status: str) -> sql.Composed:
        """Copy the row of a run outside a transaction that did not finish into
        the log, as *status* (``failed`` or ``interrupted``), with how far it got
        and its error."""
        duration = (
            "clock_timestamp() - started_at" if status == FAILED else "NULL::interval"
        )
        return sql.SQL(
            "INSERT INTO {} (version, label, name, direction, checksum, "
            "in_transaction, started_at, duration, applied_by, db_role, note, "
            "status, error) SELECT version, label, name, direction, checksum, "
            "in_transaction, started_at, " + duration + ", applied_by, db_role, "
            "format('stopped after %s of %s statement(s)', statements_done, "
            "statements_total), {}, error FROM {} WHERE version = {}"
        ).format(self.log, sql.Literal(status), self.current, sql.Literal(version))

    # -- resolve ---------------------------------------------------------------

    def set_checksum(self, version: int, checksum: str) -> sql.Composed:
        return sql.SQL("UPDATE {} SET checksum = {} WHERE version = {}").format(
            self.current, sql.Literal(checksum), sql.Literal(version)
        )

    def log_note(
        self, row: HistoryRow, direction: str, applied_by: str, note: str
    ) -> sql.Composed:
        return sql.SQL(
            "INSERT INTO {} (version, label, name, direction, checksum, "
            "in_transaction, "
            "started_at, duration, applied_by, note) VALUES ({}, {}, {}, {}, {}, {}, "
            "now(), NULL, {}, {})"
        ).format(
            self.log,
            sql.Literal(row.version),
            sql.Literal(row.label),
            sql.Literal(row.name),
            sql.Literal(direction),
            sql.Literal(row.checksum),
            sql.Literal(row.in_transaction),
            sql.Literal(applied_by),
            sql.Literal(note),
        )

    # -- reads -----------------------------------------------------------------

    def exists(self, conn: psycopg.Connection[Any]) -> bool:
        row = conn.execute(
            "SELECT to_regclass(%s) IS NOT NULL",
            [self.current.as_string(conn)],
        ).fetchone()
        return bool(row and row[0])

    def read(self, conn: psycopg.Connection[Any]) -> list[HistoryRow]:
        """The rows of the current-state table, by version (empty if it is absent)."""
        if not self.exists(conn):
            return []
        query = sql.SQL(
            "SELECT version, label, name, checksum, status, direction, in_transaction, "
            "applied_at, duration, applied_by, statements_done, statements_total, "
            "error FROM {} ORDER BY version"
        ).format(self.current)
        with conn.cursor() as cur:
            cur.execute(query)
            return [HistoryRow(int(row[0]), *row[1:]) for row in cur.fetchall()]

    def read_log(
        self, conn: psycopg.Connection[Any], limit: int | None = None
    ) -> list[LogEntry]:
        """The log of every run, oldest first (the newest *limit* if given)."""
        if not self.exists(conn):
            return []
        # a log of layout 1 (not upgraded yet: reading takes no lock) has
        # neither status nor error
        row = conn.execute(
            "SELECT count(*) FROM pg_attribute WHERE attrelid = %s::regclass "
            "AND attname = 'status' AND NOT attisdropped",
            [self.log.as_string(conn)],
        ).fetchone()
        layout_2 = bool(row and row[0])
        outcome = "status, error" if layout_2 else f"'{DONE}', NULL"
        query = sql.SQL(
            "SELECT * FROM (SELECT id, version, label, name, direction, checksum, "
            "in_transaction, started_at, duration, applied_by, db_role, note, "
            + outcome
            + " FROM {} ORDER BY id DESC {}) newest ORDER BY id"
        ).format(
            self.log,
            sql.SQL("LIMIT {}").format(sql.Literal(limit)) if limit else sql.SQL(""),
        )
        with conn.cursor() as cur:
            cur.execute(query)
            return [LogEntry(row[0], int(row[1]), *row[2:]) for row in cur.fetchall()]


_LOG_STATUS = (
    f"status text NOT NULL DEFAULT '{DONE}' "
    f"CHECK (status IN ('{DONE}', '{FAILED}', '{INTERRUPTED}'))"
)


def _identity(migration: Migration) -> tuple[sql.Literal, sql.Literal, sql.Literal]:
    return (
        sql.Literal(migration.version),
        sql.Literal(migration.label),
        sql.Literal(migration.name),
    )


@dataclass(frozen=True)
class HistoryRow:
    """A row of the current-state table."""

    version: int
    label: str
    name: str
    checksum: str
    status: str
    direction: str
    in_transaction: bool
    applied_at: datetime
    duration: timedelta | None
    applied_by: str
    statements_done: int
    statements_total: int
    error: str | None

    @property
    def ident(self) -> str:
        return f"{self.label}_{self.name}" if self.name else self.label


@dataclass(frozen=True)
class LogEntry:
    """A row of the log: one up or down that ran, or a manual resolution.

    *status* is ``done``, or for a run outside a transaction that did not finish
    ``failed`` (with its *error*) or ``interrupted``; *note* then says how far it
    got.
    """

    id: int
    version: int
    label: str
    name: str
    direction: str
    checksum: str
    in_transaction: bool
    started_at: datetime
    duration: timedelta | None
    applied_by: str
    db_role: str
    note: str | None
    status: str = DONE
    error: str | None = None
