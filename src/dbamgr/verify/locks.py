"""The lock trace: which locks each statement takes, and which tables it rewrites.

Inside a transaction the trace is exact: after each statement, before COMMIT and
in the statement's own round trip (a function call sent with it), the runner's own
locks are read from ``pg_locks`` (they are held until the end of the
transaction, so the new ones belong to that statement), and the relfilenode of
every table that existed before the migration is compared with its previous value
(a new one means the table was rewritten). Outside a transaction locks end with
each statement, so a second connection samples ``pg_locks`` while it runs; such
traces are marked ``sampled`` and may miss a short lock.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from dbamgr.db import connect
from dbamgr.migrations.plan import Plan, Step
from dbamgr.schema.capture import Change
from dbamgr.schema.incremental import Touched
from dbamgr.schema.snapshot import Snapshot

logger = logging.getLogger(__name__)

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
# seconds between two polls of pg_locks outside a transaction
SAMPLE_INTERVAL = 0.002
# the weakest mode that DDL takes (reads and writes of rows take weaker ones)
_SCHEMA_CHANGE = _RANK["ShareUpdateExclusiveLock"]
_MATVIEW = "materialized view"

_FUNCTION = "lock_trace"
# Installed in the scratch database, in dbamgr's own schema: PL/pgSQL keeps its
# plan for the session, where a plain query would be planned after every
# statement (DDL discards psycopg's prepared statements). One row "time" with
# the microseconds since the client's message arrived (the statement sent with
# it ran in that time); a row "rel" per relation lock, with the file node of a
# table or materialized view locked ACCESS EXCLUSIVE (only those can have been
# rewritten), and a row "obj" per lock on another object, with its catalog.
# It runs as its owner, so that a migration that switches to a role of its own
# (SET ROLE) is traced like any other.
_INSTALL = """
CREATE OR REPLACE FUNCTION {function}(
    OUT kind text, OUT id oid, OUT mode text, OUT extra bigint,
    OUT catalog text)
RETURNS SETOF record LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog AS $body$
BEGIN
    kind := 'time';
    extra := (extract(epoch FROM pg_catalog.clock_timestamp()
                                 - pg_catalog.statement_timestamp())
              * 1000000)::bigint;
    RETURN NEXT;
    RETURN QUERY
    SELECT CASE WHEN l.locktype = 'relation' THEN 'rel' ELSE 'obj' END,
           coalesce(l.relation, l.objid), l.mode,
           CASE WHEN l.locktype = 'relation' AND l.mode = 'AccessExclusiveLock' THEN
                     (SELECT c.relfilenode::bigint FROM pg_catalog.pg_class c
                      WHERE c.oid = l.relation AND c.relkind IN ('r', 'm'))
           END,
           l.classid::regclass::text
    FROM pg_catalog.pg_locks l
    WHERE l.pid = pg_catalog.pg_backend_pid() AND l.granted
      AND (l.locktype = 'relation'
           OR (l.locktype = 'object' AND l.mode <> 'AccessShareLock'
               AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d
                                 WHERE d.datname = pg_catalog.current_database())));
END
$body$;
GRANT USAGE ON SCHEMA {schema} TO PUBLIC;
GRANT EXECUTE ON FUNCTION {function}() TO PUBLIC;
"""
_FILENODES = """
SELECT c.oid::bigint, c.relfilenode::bigint FROM pg_catalog.pg_class c
WHERE c.oid = ANY(%s::oid[])
"""
# a statement that empties tables: their new file nodes are no rewrite
_TRUNCATE = re.compile(r"\s*(?:(?:--[^\n]*\n|/\*.*?\*/)\s*)*TRUNCATE\b", re.I | re.S)
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
    """A lock a statement took on a relation that existed before the migration;
    for an index, *of* names its table; for a sequence a column owns, *owner*
    names the column's table."""

    relation: str
    mode: str
    of: str | None = None
    owner: str | None = None

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
    truncated: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    sampled: bool = False


@dataclass
class TableLock:
    """The strongest lock a migration took on one relation (a table, view or
    sequence; a lock on an index counts against its table, *via* naming the
    index), and its effects."""

    relation: str
    mode: str
    statement: int
    line: int
    via: str | None = None
    # for a sequence a column owns: that column's table
    owner: str | None = None
    rewritten: bool = False
    truncated: bool = False
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

    @property
    def rank(self) -> int:
        """The lock's strength, 0 for ACCESS SHARE up to 7 (ACCESS EXCLUSIVE)."""
        return _RANK.get(self.mode, 0)

    def describe(self) -> str:
        text = f"{self.relation} {mode_name(self.mode)} (line {self.line})"
        if self.via is not None:
            text += f" on its index {self.via}"
        if self.rewritten:
            text += ", rewritten"
        if self.truncated:
            text += ", truncated"
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

    def __init__(self, url: str, pid: int) -> None:
        self.url, self.pid = url, pid
        self.seen: set[tuple[int, str]] = set()
        self._stop = threading.Event()
        self._polling = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._conn: psycopg.Connection[Any] | None = None

    def start(self) -> None:
        """Connect and start polling; return once the first poll has run, so
        that even a short statement sent next is watched from its start."""
        self._conn = connect(self.url, purpose="lock sampler")
        self._thread.start()
        self._polling.wait()

    def _run(self) -> None:
        assert self._conn is not None
        try:
            while not self._stop.is_set():
                self.seen.update(self._conn.execute(_SAMPLE, [self.pid]).fetchall())
                self._polling.set()
                self._stop.wait(SAMPLE_INTERVAL)
        except psycopg.Error as exc:
            # the database went away under the sampler (the statement failed
            # and the scratch database is being dropped): what it saw stands
            logger.debug("lock sampler stopped: %s", exc)
        finally:
            self._polling.set()

    def stop(self) -> set[tuple[int, str]]:
        self._stop.set()
        self._thread.join()
        if self._conn is not None:
            self._conn.close()
        return self.seen


def install_lock_trace(conn: psycopg.Connection[Any], schema: str) -> str:
    """Install the lock query in dbamgr's own *schema* of the database *conn* is
    connected to (it needs no superuser); return its qualified name, for
    :class:`LockTracer`."""
    function = sql.SQL("{}.{}").format(
        sql.Identifier(schema), sql.Identifier(_FUNCTION)
    )
    with conn.transaction():
        conn.execute(
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema))
        )
        conn.execute(
            sql.SQL(_INSTALL).format(function=function, schema=sql.Identifier(schema))
        )
    return function.as_string(conn)


class LockTracer:
    """A :class:`~dbamgr.migrations.runner.StatementObserver` that records a
    :class:`StatementTrace` per statement of the plans it watches.

    Before each plan, :meth:`watch` gives it the schema as it stands (the
    relations that exist, their names and file nodes). Inside a transaction the
    lock query travels with each statement, in the same round trip.
    """

    def __init__(self, url: str, function: str, changes: str | None = None) -> None:
        """*url* is the database's, for the sampler; *function* the lock query
        that :func:`install_lock_trace` installed; *changes*, if given, the
        function of the change capture (:mod:`dbamgr.schema.capture`), called
        with the last statement of a transaction."""
        self.url = url
        self.query = f"SELECT * FROM {function}()"
        self.changes_query = None if changes is None else f"SELECT * FROM {changes}()"
        self._changes: list[Change] | None = None
        self.detailed = True
        self.statements: list[StatementTrace] = []
        self._before: Snapshot | None = None
        self._filenodes: dict[int, int] = {}
        self._held: set[tuple[int, str]] = set()
        self._locked: set[tuple[int, str]] = set()
        self._objects: set[tuple[str, int]] = set()
        self._exact = True
        self._sampler: _Sampler | None = None

    def watch(self, before: Snapshot, *, detailed: bool = True) -> None:
        """Trace the next plan, run on the schema *before*: per statement if
        *detailed*, else only what the whole plan locked."""
        self._before = before
        self.detailed = detailed

    def plan_started(self, conn: psycopg.Connection[Any], plan: Plan) -> None:
        self.statements = []
        self._changes = None
        self._held = set()
        self._locked = set()
        self._objects = set()
        self._exact = plan.in_transaction
        if self.detailed and self._before is not None:
            self._filenodes = dict(self._before.filenodes)
        else:
            # only what the plan touches is wanted: any relation it locks counts
            self._filenodes = {}

    def trailer(self, plan: Plan, step: Step) -> str | None:
        """The lock query, to send with *step* when its locks will still be held
        after it: inside a transaction (and, unless detailed, after the last
        statement only); after the last, the change capture's too."""
        if not plan.in_transaction or step.statement is None:
            return None
        last = step.statement.index == plan.script.statements[-1].index
        if not last:
            return self.query if self.detailed else None
        if self.changes_query is None:
            return self.query
        return f"{self.query}\n;\n{self.changes_query}"

    def statement_started(
        self, conn: psycopg.Connection[Any], plan: Plan, step: Step
    ) -> None:
        if not plan.in_transaction and self.detailed:
            self._sampler = _Sampler(self.url, conn.info.backend_pid)
            self._sampler.start()

    def statement_failed(self, plan: Plan, step: Step) -> None:
        """*step* failed: stop watching it."""
        if self._sampler is not None:
            self._sampler.stop()
            self._sampler = None

    def statement_finished(
        self,
        conn: psycopg.Connection[Any],
        plan: Plan,
        step: Step,
        seconds: float,
        results: list[list[tuple[Any, ...]]] | None = None,
    ) -> None:
        """Record what *step* did; *results* are those of :meth:`trailer`'s
        queries when they travelled with the statement."""
        assert step.statement is not None
        if results is not None:
            rows = results[0]
            if len(results) > 1:
                self._changes = [Change(*row) for row in results[1]]
            # the server's time for the statement alone, without the lock query
            seconds = next((r[3] / 1e6 for r in rows if r[0] == "time"), seconds)
        elif plan.in_transaction:
            if not self.detailed:
                return  # not the last statement: its locks are read after the last
            rows = conn.execute(self.query).fetchall()
        else:
            rows = []  # its locks ended with it: the sampler saw what it could
        every = {(int(oid), mode) for kind, oid, mode, _, _ in rows if kind == "rel"}
        self._locked |= every
        self._objects |= {
            (catalog, int(oid)) for kind, oid, _, _, catalog in rows if kind == "obj"
        }
        if not self.detailed:
            self._held |= every
            return
        if self._sampler is not None:
            every |= self._sampler.stop()
            self._sampler = None
            self._locked |= every
        self.statements.append(
            self._trace(conn, plan, step, seconds=seconds, rows=rows, every=every)
        )

    def _trace(
        self,
        conn: psycopg.Connection[Any],
        plan: Plan,
        step: Step,
        *,
        seconds: float,
        rows: list[tuple[Any, ...]],
        every: set[tuple[int, str]],
    ) -> StatementTrace:
        """What the statement did to the relations that existed before the plan."""
        assert step.statement is not None
        renewed, dropped = self._file_changes(conn, plan, rows, every)
        if not plan.in_transaction:
            # PostgreSQL rewrites and drops a table only under ACCESS EXCLUSIVE:
            # the lock was there even when sampling missed it
            every = every | {(oid, "AccessExclusiveLock") for oid in renewed + dropped}
        relations = {}
        for oid in {oid for oid, _ in every}:
            known = self._relation(oid)
            if known is not None:
                relations[oid] = known
        locks = {(oid, mode) for oid, mode in every if oid in relations}
        new = sorted(
            locks - self._held, key=lambda item: (relations[item[0]][0], item[1])
        )
        self._held |= locks

        truncate = bool(_TRUNCATE.match(step.statement.text))
        renewed_names = sorted(relations[oid][0] for oid in renewed)
        text = step.statement.text
        return StatementTrace(
            index=step.statement.index + 1,
            line=step.statement.line,
            statement=text if len(text) <= 200 else text[:197] + "...",
            seconds=seconds,
            locks=[
                LockTaken(relations[oid][0], mode, *relations[oid][1:])
                for oid, mode in new
            ],
            rewrites=[] if truncate else renewed_names,
            truncated=renewed_names if truncate else [],
            dropped=sorted(relations[oid][0] for oid in dropped),
            sampled=not plan.in_transaction,
        )

    def _file_changes(
        self,
        conn: psycopg.Connection[Any],
        plan: Plan,
        rows: list[tuple[Any, ...]],
        every: set[tuple[int, str]],
    ) -> tuple[list[int], list[int]]:
        """The tables (and materialized views) that existed before and now have
        a new file node, and those that are gone.

        Inside a transaction the lock query read the file nodes of the ones held
        ACCESS EXCLUSIVE (only those can have been rewritten or dropped);
        outside one, they are read now for every table there was.
        """
        if plan.in_transaction:
            filenodes = {
                int(oid): node
                for kind, oid, _, node, _ in rows
                if kind == "rel" and node is not None
            }
            checked = [
                oid
                for oid, mode in every
                if mode == "AccessExclusiveLock" and oid in self._filenodes
            ]
        else:
            checked = list(self._filenodes)
            filenodes = dict(conn.execute(_FILENODES, [checked]).fetchall())
        renewed, dropped = [], []
        for oid in checked:
            node = filenodes.get(oid)
            if node is None:
                dropped.append(oid)
                del self._filenodes[oid]
            elif node != self._filenodes[oid]:
                renewed.append(oid)
                self._filenodes[oid] = node
        return renewed, dropped

    def _relation(self, oid: int) -> tuple[str, str | None, str | None] | None:
        if self._before is None or not self.detailed:
            return None
        return self._before.relation(oid)

    def touched(self) -> Touched:
        """What the plan locked, for :class:`~dbamgr.schema.incremental.SnapshotCache`:
        the relations it locked in a mode that comes with DDL (SHARE UPDATE
        EXCLUSIVE or stronger; reads and writes of rows change no schema), and
        the other objects it locked.

        Outside a transaction locks are sampled, so the answer is not exact.
        """
        relations = {
            oid for oid, mode in self._locked if _RANK.get(mode, 0) >= _SCHEMA_CHANGE
        }
        return Touched(
            relations, set(self._objects), exact=self._exact, changes=self._changes
        )

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


def summarize(
    statements: list[StatementTrace], in_transaction: bool
) -> list[TableLock]:
    """The strongest lock per relation that existed before (a lock on an index
    counts against its table: queries on the table plan with all its indexes),
    with rewrites, truncations and drops, and how long an ACCESS EXCLUSIVE lock
    stayed held while later statements ran."""
    summary: dict[str, TableLock] = {}
    for trace in statements:
        for lock in trace.locks:
            relation = lock.of or lock.relation
            current = summary.get(relation)
            if current is None or _RANK[lock.mode] > _RANK[current.mode]:
                summary[relation] = TableLock(
                    relation,
                    lock.mode,
                    trace.index,
                    trace.line,
                    via=None if lock.of is None else lock.relation,
                    owner=lock.owner,
                    rewritten=current.rewritten if current else False,
                    truncated=current.truncated if current else False,
                    sampled=trace.sampled,
                )
        for relation in trace.rewrites:
            if relation in summary:
                summary[relation].rewritten = True
        for relation in trace.truncated:
            if relation in summary:
                summary[relation].truncated = True
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
