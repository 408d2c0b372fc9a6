"""Heartbeat rows and backup markers, written into dbamgr's own schema.

``dbamgr heartbeat`` (every minute from the schedule) and every base backup add a
row to ``dbamgr.backup_heartbeat``. A drill compares the newest row it recovered
with the newest on the source: the difference is the data a restore would lose,
the recovery point objective (RPO) as measured.

At a base backup, the marker row is written in the same REPEATABLE READ
transaction that counts the rows of every table, so that a restore stopped right
after that transaction (``recovery_target_xid``) must show exactly those counts.
Transactions that commit while the counts run would make them inexact; dbamgr
checks whether any did, and records the counts as exact only if none did.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from dbamgr.db.connect import connect

logger = logging.getLogger(__name__)

SCHEMA = "dbamgr"
TABLE = "backup_heartbeat"
_MAX_RACE_CHECK = 10_000

_CREATE = sql.SQL(
    "CREATE SCHEMA IF NOT EXISTS {schema};"
    "CREATE TABLE IF NOT EXISTS {schema}.{table} ("
    " id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " written_at timestamptz NOT NULL DEFAULT clock_timestamp(),"
    " source text NOT NULL)"
).format(schema=sql.Identifier(SCHEMA), table=sql.Identifier(TABLE))

_INSERT = sql.SQL(
    "INSERT INTO {}.{} (source) VALUES (%s) RETURNING id, written_at"
).format(sql.Identifier(SCHEMA), sql.Identifier(TABLE))

_NEWEST = sql.SQL(
    "SELECT id, written_at, source FROM {}.{} ORDER BY id DESC LIMIT 1"
).format(sql.Identifier(SCHEMA), sql.Identifier(TABLE))

# Tables whose rows a restore brings back: permanent, ordinary (not partitioned
# parents, whose rows are counted in their partitions), outside system schemas.
TABLES_QUERY = """
SELECT n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND c.relpersistence = 'p'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_%%'
  AND NOT (n.nspname = %s AND c.relname = %s)
ORDER BY 1, 2
"""


@dataclass(frozen=True)
class Heartbeat:
    """One heartbeat row."""

    id: int
    written_at: datetime
    source: str = ""


@dataclass
class Marker:
    """The marker of a base backup: its transaction, and the counts it saw."""

    xid: int
    lsn: str
    written_at: datetime
    database: str
    counts: dict[str, int] = field(default_factory=dict)
    exact: bool = False


def ensure_table(conn: psycopg.Connection[Any]) -> None:
    """Create the heartbeat table if it is missing."""
    conn.execute(_CREATE)


def write_heartbeat(url: str, source: str = "heartbeat") -> Heartbeat:
    """Insert a heartbeat row into the database at *url*."""
    with connect(url, purpose="heartbeat") as conn:
        ensure_table(conn)
        row = conn.execute(_INSERT, [source]).fetchone()
    assert row is not None
    logger.info("heartbeat %s written at %s", row[0], row[1])
    return Heartbeat(int(row[0]), row[1], source)


def newest_heartbeat(conn: psycopg.Connection[Any]) -> Heartbeat | None:
    """The newest heartbeat row, or None if there is no table or no row."""
    exists = conn.execute("SELECT to_regclass(%s)", [f"{SCHEMA}.{TABLE}"]).fetchone()
    if exists is None or exists[0] is None:
        return None
    row = conn.execute(_NEWEST).fetchone()
    return Heartbeat(int(row[0]), row[1], row[2]) if row else None


def count_rows(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Rows per table (``schema.table``) in the connection's snapshot."""
    counts = {}
    for schema, table in conn.execute(TABLES_QUERY, [SCHEMA, TABLE]).fetchall():
        query = sql.SQL("SELECT count(*) FROM {}.{}").format(
            sql.Identifier(schema), sql.Identifier(table)
        )
        row = conn.execute(query).fetchone()
        counts[f"{schema}.{table}"] = int(row[0]) if row else 0
    return counts


def write_marker(url: str, label: str, *, with_counts: bool = True) -> Marker:
    """Count the rows of every table and write a marker row, in one transaction."""
    with connect(url, purpose="backup marker") as conn:
        ensure_table(conn)
        conn.autocommit = False
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        row = conn.execute(
            "SELECT pg_snapshot_xmin(s)::text, pg_snapshot_xmax(s)::text,"
            " ARRAY(SELECT pg_snapshot_xip(s)::text), current_database()"
            " FROM pg_current_snapshot() s"
        ).fetchone()
        assert row is not None
        xmax, in_progress, database = int(row[1]), [int(x) for x in row[2]], row[3]
        counts = count_rows(conn) if with_counts else {}
        inserted = conn.execute(_INSERT, [label]).fetchone()
        xid_row = conn.execute("SELECT pg_current_xact_id()::text").fetchone()
        assert inserted is not None and xid_row is not None
        xid = int(xid_row[0])
        conn.commit()
        conn.autocommit = True
        after = conn.execute(
            "SELECT pg_snapshot_xmax(pg_current_snapshot())::text,"
            " pg_current_wal_lsn()::text"
        ).fetchone()
        assert after is not None
        exact = with_counts and not _others_committed(
            conn, in_progress, xmax, int(after[0]), xid
        )
    logger.info("backup marker %s in transaction %d at %s", label, xid, after[1])
    return Marker(xid, str(after[1]), inserted[1], database, counts, exact)


def _others_committed(
    conn: psycopg.Connection[Any],
    in_progress: list[int],
    xmax: int,
    xmax_after: int,
    own: int,
) -> bool:
    """Whether a transaction unseen by the counting snapshot has committed."""
    candidates = [x for x in in_progress if x != own]
    if xmax_after - xmax > _MAX_RACE_CHECK:
        return True
    candidates += [x for x in range(xmax, xmax_after) if x != own]
    if not candidates:
        return False
    row = conn.execute(
        "SELECT count(*) FROM unnest(%s::text[]) x"
        " WHERE pg_xact_status(x::xid8) = 'committed'",
        [[str(x) for x in candidates]],
    ).fetchone()
    return bool(row and row[0])
