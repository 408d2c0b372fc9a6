"""What the live database tells the lint: sizes, row counts, column types.

Every query is named here. Answers are cached per relation, so a lint run asks
each question at most once.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from dbamgr.lint.nodes import ColumnType

logger = logging.getLogger(__name__)

# Tables never analyzed have reltuples = -1; below this size we count their rows.
_COUNT_LIMIT = 64 * 1024 * 1024

STATS_QUERY = """
SELECT c.oid, n.nspname, c.relname, c.reltuples::bigint,
       pg_table_size(c.oid), pg_total_relation_size(c.oid)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.oid = to_regclass(%s)
"""

COLUMN_QUERY = """
SELECT coalesce(et.typname, t.typname), a.atttypmod, et.oid IS NOT NULL
  FROM pg_attribute a
  JOIN pg_type t ON t.oid = a.atttypid
  LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typcategory = 'A'
 WHERE a.attrelid = to_regclass(%s) AND a.attname = %s AND NOT a.attisdropped
"""

NOT_NULL_CHECK_QUERY = """
SELECT pg_get_constraintdef(oid)
  FROM pg_constraint
 WHERE conrelid = to_regclass(%s) AND contype = 'c' AND convalidated
"""

INDEX_TABLE_QUERY = """
SELECT indrelid::regclass::text FROM pg_index WHERE indexrelid = to_regclass(%s)
"""

DEPENDENTS_QUERY = """
SELECT DISTINCT v.oid::regclass::text
  FROM pg_depend d
  JOIN pg_rewrite r ON r.oid = d.objid AND d.classid = 'pg_rewrite'::regclass
  JOIN pg_class v ON v.oid = r.ev_class
 WHERE d.refobjid = to_regclass(%s) AND v.oid <> d.refobjid
UNION
SELECT DISTINCT conrelid::regclass::text
  FROM pg_constraint
 WHERE confrelid = to_regclass(%s) AND contype = 'f' AND conrelid <> confrelid
"""

NULLABLE_INDEX_COLUMNS_QUERY = """
SELECT a.attname
  FROM pg_index i
  JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
 WHERE i.indexrelid = to_regclass(%s) AND NOT a.attnotnull
"""

SETTINGS_QUERY = """
SELECT current_setting('server_version_num')::int, current_setting('TimeZone')
"""

VOLATILITY_QUERY = """
SELECT proname, max(provolatile) FROM pg_proc WHERE proname = ANY(%s) GROUP BY 1
"""

_NOT_NULL_DEF = re.compile(r'^CHECK \(+"?([^"()]+?)"? IS NOT NULL\)+$')


@dataclass(frozen=True)
class TableStats:
    """The size of a table now."""

    relation: str
    rows: int
    bytes: int
    """The table's own size (heap and TOAST)."""
    total_bytes: int
    """With its indexes."""

    def bytes_for(self, work: str) -> int:
        """The bytes a kind of work goes through: a rewrite rebuilds the indexes."""
        return self.total_bytes if work == "rewrite" else self.bytes


def _modifiers(type_name: str, typmod: int) -> tuple[int, ...]:
    if typmod < 0:
        return ()
    if type_name in ("varchar", "bpchar"):
        return (typmod - 4,)
    if type_name == "numeric":
        value = typmod - 4
        return (value >> 16, value & 0xFFFF)
    if type_name in ("timestamp", "timestamptz", "time", "timetz", "bit", "varbit"):
        return (typmod,)
    if type_name == "interval":
        precision = typmod & 0xFFFF
        return () if precision == 0xFFFF else (precision,)
    return ()


class LiveCatalog:
    """Answers about one database, over an open connection."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        row = conn.execute(SETTINGS_QUERY).fetchone()
        assert row is not None
        self.server_version: int = row[0]
        self.timezone: str = row[1]
        self._stats: dict[str, TableStats | None] = {}
        self._columns: dict[tuple[str, str], ColumnType | None] = {}
        self._checks: dict[str, set[str]] = {}
        self._volatility: dict[str, str | None] = {}
        self._index_tables: dict[str, str | None] = {}

    @property
    def major_version(self) -> int:
        """The server's major version, e.g. 18."""
        return self.server_version // 10000

    def stats(self, relation: str) -> TableStats | None:
        """Rows and bytes of *relation*, or None if it does not exist."""
        if relation in self._stats:
            return self._stats[relation]
        row = self.conn.execute(STATS_QUERY, [relation]).fetchone()
        found = None
        if row is not None:
            __, schema, name, rows, size, total = row
            if rows < 0:
                rows = self._count(schema, name) if size <= _COUNT_LIMIT else 0
            found = TableStats(relation, int(rows), int(size), int(total))
            logger.debug("%s: %s rows, %s bytes", relation, rows, total)
        self._stats[relation] = found
        return found

    def _count(self, schema: str, name: str) -> int:
        query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, name))
        row = self.conn.execute(query).fetchone()
        return int(row[0]) if row else 0

    def column_type(self, table: str, column: str) -> ColumnType | None:
        """The type of a column as the database has it."""
        key = (table, column)
        if key not in self._columns:
            row = self.conn.execute(COLUMN_QUERY, [table, column]).fetchone()
            self._columns[key] = (
                ColumnType(row[0], _modifiers(row[0], row[1]), bool(row[2]))
                if row
                else None
            )
        return self._columns[key]

    def has_valid_not_null_check(self, table: str, column: str) -> bool:
        """Whether a validated ``CHECK (column IS NOT NULL)`` exists."""
        if table not in self._checks:
            rows = self.conn.execute(NOT_NULL_CHECK_QUERY, [table]).fetchall()
            columns = set()
            for (definition,) in rows:
                match = _NOT_NULL_DEF.match(definition)
                if match:
                    columns.add(match[1])
            self._checks[table] = columns
        return column in self._checks[table]

    def index_table(self, index: str) -> str | None:
        """The table of an existing index."""
        if index not in self._index_tables:
            row = self.conn.execute(INDEX_TABLE_QUERY, [index]).fetchone()
            self._index_tables[index] = row[0] if row else None
        return self._index_tables[index]

    def nullable_index_columns(self, index: str) -> list[str] | None:
        """Columns of an existing index without NOT NULL (None: no such index)."""
        if self.index_table(index) is None:
            return None
        rows = self.conn.execute(NULLABLE_INDEX_COLUMNS_QUERY, [index]).fetchall()
        return [row[0] for row in rows]

    def dependents(self, relation: str) -> list[str]:
        """Views and referencing tables a DROP … CASCADE of *relation* reaches."""
        rows = self.conn.execute(DEPENDENTS_QUERY, [relation, relation]).fetchall()
        return sorted(row[0] for row in rows)

    def volatility(self, names: list[str]) -> dict[str, str | None]:
        """``i``, ``s`` or ``v`` for each function name (None if unknown)."""
        missing = [n for n in names if n not in self._volatility]
        if missing:
            rows = self.conn.execute(VOLATILITY_QUERY, [missing]).fetchall()
            found = dict(rows)
            for name in missing:
                self._volatility[name] = found.get(name)
        return {n: self._volatility[n] for n in names}
