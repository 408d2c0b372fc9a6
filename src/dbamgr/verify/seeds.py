"""Seed data for ``verify``: the project's ``seeds/*.sql``, loaded as test data.

Each file is loaded, in its own transaction and in name order, as soon as the
schema takes it: when the tables it names exist and it runs without an error
that a later migration could cure (a missing column, type, function or enum
label). A try that fails leaves nothing behind, sequences included, so a file
that inserts into several tables gets the same keys whenever it loads. A file
that never loads is reported, with the error of its last try.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from dbamgr.errors import UsageError
from dbamgr.sql import LineIndex
from dbamgr.sql.tree import ScriptSyntaxError, referenced_relations

# errors that say the schema does not take a seed file yet: a later migration
# may add the column, type, function or enum label it needs
_NOT_YET = (
    psycopg.errors.UndefinedTable,
    psycopg.errors.UndefinedColumn,
    psycopg.errors.UndefinedFunction,
    psycopg.errors.UndefinedObject,
    psycopg.errors.InvalidTextRepresentation,
)
_RELATIONS = """
SELECT n.nspname, c.relname FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
"""
_SEQUENCES = """
SELECT format('%I.%I', schemaname, sequencename), last_value, start_value
FROM pg_catalog.pg_sequences
"""


@dataclass
class _Seed:
    path: Path
    text: str
    relations: set[tuple[str | None, str]]
    waiting: str = ""  # why it is not loaded yet


class Seeds:
    """The seed files of a directory, loaded as the schema comes to take them
    (see the module's docstring)."""

    def __init__(self, directory: Path) -> None:
        self.pending: list[_Seed] = []
        self.loaded: list[str] = []
        paths = sorted(directory.glob("*.sql")) if directory.is_dir() else []
        for path in paths:
            text = path.read_text()
            try:
                relations = referenced_relations(text)
            except ScriptSyntaxError as exc:
                line, column = LineIndex(text).locate(exc.offset)
                raise UsageError(
                    f"seed file {path}:{line}:{column}: {exc.message}",
                    hint="fix the seed file; verify loads seeds as its test data",
                ) from None
            self.pending.append(_Seed(path, text, relations))

    def load_ready(self, conn: psycopg.Connection[Any]) -> bool:
        """Load the seed files the schema takes now; return whether any loaded."""
        if not self.pending:
            return False
        existing = {
            (str(schema), str(name)) for schema, name in conn.execute(_RELATIONS)
        }
        unqualified = {name for _, name in existing}
        loaded = False
        for seed in list(self.pending):
            missing = sorted(
                name if schema is None else f"{schema}.{name}"
                for schema, name in seed.relations
                if (
                    (schema, name) not in existing
                    if schema
                    else name not in unqualified
                )
            )
            if missing:
                seed.waiting = f"no table {', '.join(missing)} exists"
                continue
            if not self._try(conn, seed):
                continue
            self.pending.remove(seed)
            self.loaded.append(seed.path.name)
            loaded = True
        return loaded

    def _try(self, conn: psycopg.Connection[Any], seed: _Seed) -> bool:
        sequences = conn.execute(_SEQUENCES).fetchall()
        try:
            with conn.transaction():
                conn.execute(seed.text)
        except _NOT_YET as exc:
            # sequences do not roll back: put them back as they were
            with conn.transaction():
                for name, last, start in sequences:
                    if last is None:
                        conn.execute(
                            "SELECT pg_catalog.setval(%s, %s, false)", [name, start]
                        )
                    else:
                        conn.execute("SELECT pg_catalog.setval(%s, %s)", [name, last])
            seed.waiting = _seed_error(seed, exc)
            return False
        except psycopg.Error as exc:
            raise UsageError(
                f"seed file {_seed_error(seed, exc)}",
                hint="fix the seed file; verify loads seeds as its test data",
            ) from exc
        return True

    def problems(self) -> list[str]:
        """Why each seed file that never loaded did not."""
        return [
            f"seed file {seed.path.name} was never loaded: {seed.waiting}"
            for seed in self.pending
        ]


def _seed_error(seed: _Seed, exc: psycopg.Error) -> str:
    """``path:line:column: message`` of an error in a seed file."""
    where = str(seed.path)
    position = exc.diag.statement_position
    if position and position.isdigit():
        line, column = LineIndex(seed.text).locate(int(position) - 1)
        where = f"{where}:{line}:{column}"
    message = exc.diag.message_primary or str(exc).strip().splitlines()[0]
    return f"{where}: {message}"
