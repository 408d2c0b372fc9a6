"""Table contents as (row count, order-independent hash), to prove a down kept them.

The hash of a table is the sum of ``hashtextextended`` of each row's text form:
independent of row order and of physical layout, changed by any edited, lost or
added row. One statement fingerprints every table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from dbamgr.schema.snapshot import Snapshot, split_qualified


@dataclass(frozen=True)
class Fingerprint:
    rows: int
    digest: str


def data_tables(snapshot: Snapshot) -> list[str]:
    """Qualified names of the tables that hold rows (not partitioned parents,
    whose rows live in their partitions, nor foreign tables)."""
    return sorted(
        name
        for name, table in snapshot.objects.get("tables", {}).items()
        if table.get("kind") == "table"
    )


def fingerprint_tables(
    conn: psycopg.Connection[Any], tables: list[str]
) -> dict[str, Fingerprint]:
    """The fingerprint of each of *tables* (qualified names as in snapshots)."""
    if not tables:
        return {}
    parts = [
        sql.SQL(
            "SELECT {}::text, count(*), "
            "coalesce(sum(hashtextextended(r::text, 0)::numeric), 0)::text "
            "FROM {} r"
        ).format(sql.Literal(name), sql.Identifier(*split_qualified(name)))
        for name in tables
    ]
    query = sql.SQL(" UNION ALL ").join(parts)
    result = {}
    for name, rows, digest in conn.execute(query).fetchall():
        result[name] = Fingerprint(int(rows), digest)
    return result


def compare_fingerprints(
    before: dict[str, Fingerprint], after: dict[str, Fingerprint]
) -> list[str]:
    """A sentence for each table whose rows changed from *before* to *after*
    (tables missing from either side are the schema check's business)."""
    problems = []
    for name in sorted(set(before) & set(after)):
        old, new = before[name], after[name]
        if old.rows != new.rows:
            problems.append(f"table {name} had {old.rows} row(s), now {new.rows}")
        elif old.digest != new.digest:
            problems.append(
                f"table {name} kept {old.rows} row(s) but their content changed"
            )
    return problems


class RowCache:
    """Fingerprints kept between steps, recomputed only for tables that may have
    been written since: a write takes ROW EXCLUSIVE or a stronger lock, which the
    lock trace records."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self.known: dict[str, Fingerprint] = {}

    def get(self, tables: list[str]) -> dict[str, Fingerprint]:
        """The fingerprint of each of *tables*, computing the missing ones."""
        missing = [name for name in tables if name not in self.known]
        self.known.update(fingerprint_tables(self.conn, missing))
        return {name: self.known[name] for name in tables if name in self.known}

    def forget(self, written: set[str] | None) -> None:
        """Drop what *written* may have changed (None: everything)."""
        if written is None:
            self.known.clear()
        else:
            for name in written:
                self.known.pop(name, None)
