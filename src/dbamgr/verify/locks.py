"""The lock trace: which locks each statement takes, and which tables it rewrites.

Inside a transaction the trace is exact: after each statement, before COMMIT, the
runner's own locks are read from ``pg_locks`` (they are held until the end of the
transaction, so the new ones belong to that statement), and the relfilenode of
every table that existed before the migration is compared with its previous value
(a new one means the table was rewritten). Outside a transaction locks end with
each statement, so a second connection samples ``pg_locks`` while it runs; such
traces are marked ``sampled`` and may miss a short lock.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import psycopg

from dbamgr.db import connect
from dbamgr.migrations.plan import Plan, Step
from dbamgr.schema.incremental import Touched
from dbamgr.schema.snapshot import qualify

# from weakest to strongest
LOCK_MODES = (
    "AccessShareLock",
    "RowShareLock",
    "RowExclusiveLock",
    "ShareUpdateExclusiveLock",
    "ShareLock",
    "ShareRowExclusiveLock",
    "ExclusiveLock",
    "AccessExclusiveLock",
)
_RANK = {mode: rank for rank, mode in enumerate(LOCK_MODES)}
# the weakest mode that blocks writes (INSERT/UPDATE/DELETE take RowExclusiveLock)
BLOCKS_WRITES = _RANK["ShareLock"]
BLOCKS_READS = _RANK["AccessExclusiveLock"]
_SAMPLE_INTERVAL = 0.002
_TABLE_KINDS = ("r", "p", "m", "f")

_PREEXISTING = """
SELECT c.oid, n.nspname, c.relname, c.relkind, c.relfilenode
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
  AND c.relkind IN ('r', 'p', 'm', 'i', 'I', 'S', 'v', 'f', 'c')
"""
_AFTER_STATEMENT = """
SELECT 'lock', l.relation::bigint, l.mode FROM pg_locks l
WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted
UNION ALL
-- a rewrite takes ACCESS EXCLUSIVE: only those tables can have a new relfilenode
SELECT 'file', c.oid::bigint, c.relfilenode::text
FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted
  AND l.mode = 'AccessExclusiveLock' AND c.relkind IN ('r', 'm')
UNION ALL
SELECT 'object', l.objid::bigint, l.classid::regclass::text FROM pg_locks l
WHERE l.pid = pg_backend_pid() AND l.locktype = 'object' AND l.granted
  AND l.mode <> 'AccessShareLock'
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""
_SAMPLE = """
SELECT l.relation::bigint, l.mode FROM pg_locks l
WHERE l.pid = %s AND l.locktype = 'relation' AND l.granted
"""


def mode_name(mode: str) -> str:
    """``AccessExclusiveLock`` → ``ACCESS EXCLUSIVE``, as the docs write it."""
    words = []
    current = ""
    for char in mode.removesuffix("Lock"):
        if char.isupper() and current:
            words.append(current)
            current = ""
        current += char
    words.append(current)
    return " ".join(words).upper()


@dataclass(frozen=True)
class LockTaken:
    relation: str
    mode: str

    @property
    def blocks_writes(self) -> bool:
        return _RANK.get(self.mode, 0) >= BLOCKS_WRITES


@dataclass
class StatementTrace:
    """What one statement did to the relations that existed before it."""

    index: int
    line: int
    statement: str
    seconds: float
    locks: list[LockTaken] = field(default_factory=list)
    rewrites: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    sampled: bool = False


@dataclass
class TableLock:
    """The strongest lock a migration took on one relation, and its effects."""

    relation: str
    mode: str
    statement: int
    line: int
    rewritten: bool = False
    dropped: bool = False
    held_while: list[int] = field(default_factory=list)
    held_seconds: float = 0.0
    sampled: bool = False

    @property
    def blocks_writes(self) -> bool:
        return _RANK.get(self.mode, 0) >= BLOCKS_WRITES

    @property
    def blocks_reads(self) -> bool:
        return _RANK.get(self.mode, 0) >= BLOCKS_READS

    def describe(self) -> str:
        text = f"{self.relation} {mode_name(self.mode)} (line {self.line})"
        if self.rewritten:
            text += ", rewritten"
        if self.dropped:
            text += ", dropped"
        if self.held_while:
            text += (
                f", held while {len(self.held_while)} later statement(s) ran "
                f"({self.held_seconds * 1000:.0f} ms)"
            )
        if self.sampled:
            text += ", sampled"
        return text


class _Sampler:
    """Polls another backend's locks from a connection of its own."""

    def __init__(self, url: str, pid: int, watched: set[int]) -> None:
        self.url, self.pid, self.watched = url, pid, watched
        self.seen: set[tuple[int, str]] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._conn: psycopg.Connection[Any] | None = None

    def start(self) -> None:
        self._conn = connect(self.url, purpose="lock sampler")
        self._thread.start()

    def _run(self) -> None:
        assert self._conn is not None
        while not self._stop.is_set():
            for relation, mode in self._conn.execute(_SAMPLE, [self.pid]).fetchall():
                if relation in self.watched:
                    self.seen.add((relation, mode))
            self._stop.wait(_SAMPLE_INTERVAL)

    def stop(self) -> set[tuple[int, str]]:
        self._stop.set()
        self._thread.join()
        if self._conn is not None:
            self._conn.close()
        return self.seen


class LockTracer:
    """A :class:`~dbamgr.migrations.runner.StatementObserver` that records a
    :class:`StatementTrace` per statement of the plans it watches."""

    def __init__(self, url: str, reader: psycopg.Connection[Any] | None = None) -> None:
        """*url* is the database's, for the sampler; *reader*, if given, is a
        connection that runs no DDL, where the list of relations that exist
        before each plan is read with a prepared statement."""
        self.url = url
        self.reader = reader
        self.detailed = True
        self.statements: list[StatementTrace] = []
        self._names: dict[int, str] = {}
        self._tables: set[str] = set()
        self._filenodes: dict[int, str] = {}
        self._held: set[tuple[int, str]] = set()
        self._objects: set[tuple[str, int]] = set()
        self._exact = True
        self._sampler: _Sampler | None = None

    def plan_started(self, conn: psycopg.Connection[Any], plan: Plan) -> None:
        self.statements = []
        self._held = set()
        self._objects = set()
        self._exact = plan.in_transaction
        if not self.detailed:
            # only what the plan touches is wanted: any relation it locks counts,
            # so the list of relations that existed before is not needed
            self._names = {}
            return
        self._names = {}
        self._tables = set()
        self._filenodes = {}
        source = self.reader or conn
        rows = source.execute(_PREEXISTING, prepare=self.reader is not None)
        for oid, schema, relation, kind, filenode in rows:
            name = qualify(schema, relation)
            self._names[oid] = name
            if kind in _TABLE_KINDS:
                self._tables.add(name)
            if kind in ("r", "m"):
                self._filenodes[oid] = str(filenode)

    def statement_started(
        self, conn: psycopg.Connection[Any], plan: Plan, step: Step
    ) -> None:
        if not plan.in_transaction and self.detailed:
            self._sampler = _Sampler(self.url, conn.info.backend_pid, set(self._names))
            self._sampler.start()

    def statement_finished(
        self, conn: psycopg.Connection[Any], plan: Plan, step: Step, seconds: float
    ) -> None:
        assert step.statement is not None
        if not self.detailed and plan.in_transaction:
            # Only what the whole plan touched is wanted: locks last until the
            # end of the transaction, so one look after its last statement does.
            last = plan.script.statements[-1]
            if step.statement.index != last.index:
                return
        rows = conn.execute(_AFTER_STATEMENT).fetchall()
        names = self._names
        locks = {
            (oid, mode)
            for kind, oid, mode in rows
            if kind == "lock" and (oid in names or not self.detailed)
        }
        self._objects |= {
            (catalog, oid) for kind, oid, catalog in rows if kind == "object"
        }
        if not self.detailed:
            self._held |= locks
            return
        sampled = False
        if self._sampler is not None:
            locks |= self._sampler.stop()
            self._sampler = None
            sampled = True
        new = sorted(
            locks - self._held, key=lambda item: (self._names[item[0]], item[1])
        )
        self._held |= locks
        rewrites = []
        present = set()
        for kind, oid, filenode in rows:
            if kind != "file" or oid not in self._filenodes:
                continue
            present.add(oid)
            if self._filenodes[oid] != filenode:
                rewrites.append(names[oid])
                self._filenodes[oid] = filenode
        exclusive = {oid for oid, mode in locks if mode == "AccessExclusiveLock"}
        gone = [oid for oid in exclusive & set(self._filenodes) if oid not in present]
        dropped = [names[oid] for oid in gone]
        for oid in gone:
            del self._filenodes[oid]
        text = step.statement.text
        self.statements.append(
            StatementTrace(
                index=step.statement.index + 1,
                line=step.statement.line,
                statement=text if len(text) <= 200 else text[:197] + "...",
                seconds=seconds,
                locks=[LockTaken(self._names[oid], mode) for oid, mode in new],
                rewrites=sorted(rewrites),
                dropped=sorted(dropped),
                sampled=sampled,
            )
        )

    def touched(self) -> Touched:
        """What the plan locked, for :class:`~dbamgr.schema.incremental.SnapshotCache`.

        Outside a transaction locks are sampled, so the answer is not exact.
        """
        relations = {oid for oid, _ in self._held}
        return Touched(relations, set(self._objects), exact=self._exact)

    def written(self) -> set[int] | None:
        """Oids of the relations the plan may have written rows to (it held ROW
        EXCLUSIVE or stronger on them); None when locks were only sampled."""
        if not self._exact:
            return None
        return {
            oid
            for oid, mode in self._held
            if _RANK.get(mode, 0) >= _RANK["RowExclusiveLock"]
        }

    def tables(self) -> set[str]:
        """Names of the tables (and materialized views) that existed before."""
        return set(self._tables)


def summarize(
    statements: list[StatementTrace], in_transaction: bool, tables: set[str]
) -> list[TableLock]:
    """The strongest lock per table among *tables* (locks on their indexes and
    sequences go with them), with rewrites and drops, and how long an ACCESS
    EXCLUSIVE lock stayed held while later statements ran."""
    summary: dict[str, TableLock] = {}
    for trace in statements:
        for lock in trace.locks:
            if lock.relation not in tables:
                continue
            current = summary.get(lock.relation)
            if current is None or _RANK[lock.mode] > _RANK[current.mode]:
                summary[lock.relation] = TableLock(
                    lock.relation,
                    lock.mode,
                    trace.index,
                    trace.line,
                    rewritten=current.rewritten if current else False,
                    sampled=trace.sampled,
                )
        for relation in trace.rewrites:
            if relation in summary:
                summary[relation].rewritten = True
        for relation in trace.dropped:
            if relation in summary:
                summary[relation].dropped = True
    if in_transaction:
        for table_lock in summary.values():
            if table_lock.blocks_reads:
                later = [t for t in statements if t.index > table_lock.statement]
                table_lock.held_while = [t.index for t in later]
                table_lock.held_seconds = sum(t.seconds for t in later)
    return sorted(summary.values(), key=lambda t: t.relation)
