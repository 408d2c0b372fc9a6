"""One runner at a time: a session-level advisory lock on the target database.

The key is derived from the history table's name, so two projects that keep their
history in different tables of one database do not block each other. A second
runner waits up to ``lock_wait``, then fails naming the holder's pid and
application_name.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql

from dbamgr.config import format_duration
from dbamgr.errors import LockTimeout

logger = logging.getLogger(__name__)

# "dbmg" as a 32-bit integer: the first half of every dbamgr advisory lock key
LOCK_CLASS = 0x64626D67


@dataclass(frozen=True)
class LockHolder:
    """The session holding the migration lock."""

    pid: int
    application_name: str
    user: str
    client: str | None
    since: str | None

    def describe(self) -> str:
        client = f" from {self.client}" if self.client else ""
        name = self.application_name or "(no application_name)"
        return f'pid {self.pid} ("{name}", user {self.user}{client})'


def lock_key(schema: str, table: str) -> tuple[int, int]:
    """The two-integer advisory lock key for a history table."""
    return LOCK_CLASS, zlib.crc32(f"{schema}.{table}".encode()) & 0x7FFFFFFF


def acquire_sql(key: tuple[int, int]) -> sql.Composed:
    return sql.SQL("SELECT pg_advisory_lock({}, {})").format(
        sql.Literal(key[0]), sql.Literal(key[1])
    )


def release_sql(key: tuple[int, int]) -> sql.Composed:
    return sql.SQL("SELECT pg_advisory_unlock({}, {})").format(
        sql.Literal(key[0]), sql.Literal(key[1])
    )


def find_holder(
    conn: psycopg.Connection[Any], key: tuple[int, int]
) -> LockHolder | None:
    """The session that holds the lock *key*, if any."""
    row = conn.execute(
        "SELECT a.pid, a.application_name, a.usename::text, "
        "host(a.client_addr), a.backend_start::text "
        "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 "
        "AND l.classid = %s::bigint::oid AND l.objid = %s::bigint::oid "
        "AND l.database = (SELECT oid FROM pg_database "
        "WHERE datname = current_database())",
        list(key),
    ).fetchone()
    if row is None:
        return None
    return LockHolder(row[0], row[1] or "", row[2] or "", row[3], row[4])


def acquire(conn: psycopg.Connection[Any], key: tuple[int, int], wait: float) -> None:
    """Take the lock *key* on *conn*, waiting at most *wait* seconds for it.

    Raises :class:`LockTimeout` naming the holder when the wait runs out.
    """
    row = conn.execute("SELECT pg_try_advisory_lock(%s, %s)", list(key)).fetchone()
    if row and row[0]:
        return
    holder = find_holder(conn, key)
    who = holder.describe() if holder else "another session"
    if wait > 0:
        logger.warning(
            "another migration runner holds the lock: %s; waiting up to %.0fs",
            who,
            wait,
        )
        try:
            conn.execute(
                sql.SQL("SET lock_timeout = {}").format(
                    sql.Literal(format_duration(wait))
                )
            )
            conn.execute(acquire_sql(key))
            return
        except pg_errors.LockNotAvailable:
            holder = find_holder(conn, key) or holder
            who = holder.describe() if holder else who
        finally:
            conn.execute("RESET lock_timeout")
    raise LockTimeout(
        f"another migration runner holds the lock on this database: {who}",
        hint="wait for it to finish, or raise [migrations] lock_wait; if that "
        "process is gone, end its session with pg_terminate_backend(pid)",
        pid=holder.pid if holder else None,
        application_name=holder.application_name if holder else None,
    )
