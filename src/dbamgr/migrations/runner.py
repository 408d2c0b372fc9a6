"""Running plans against a target: the lock, retries, and failures that say where.

A :class:`Session` is one runner's connection to the target. It holds the migration
lock for its whole life and creates the history tables on first use. :meth:`run`
executes one :class:`~dbamgr.migrations.plan.Plan`, retrying it when the server
reports a lock timeout, a deadlock, a serialization failure or a lost connection.
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import os
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import psycopg
from psycopg import errors as pg_errors

from dbamgr.config import MigrationSettings
from dbamgr.db import connect, is_connection_lost
from dbamgr.errors import MigrationError
from dbamgr.migrations import lock
from dbamgr.migrations.history import APPLIED, FAILED, HistoryRow, HistoryTables
from dbamgr.migrations.plan import UP, Plan, Step, Timeouts
from dbamgr.migrations.source import Migration, Script
from dbamgr.sql import Statement
from dbamgr.target import Target

logger = logging.getLogger(__name__)

_RETRYABLE = (
    pg_errors.LockNotAvailable,
    pg_errors.DeadlockDetected,
    pg_errors.SerializationFailure,
)


@dataclass(frozen=True)
class Event:
    """Progress of a run, for a caller that shows it."""

    kind: str  # "start", "done", "retry", "failed"
    migration: Migration
    direction: str
    seconds: float = 0.0
    message: str = ""
    position: int = 1
    count: int = 1


EventHandler = Callable[[Event], None]


class StatementObserver(Protocol):
    """Watches each statement of a plan run: the lock trace of ``verify``.

    Its calls run on the runner's connection, inside the migration's transaction
    when there is one, so that they see what the statement did before COMMIT.
    """

    def plan_started(self, conn: psycopg.Connection[Any], plan: Plan) -> None: ...

    def trailer(self, plan: Plan, step: Step) -> str | None:
        """Queries to send with *step*, after it in the same round trip (None:
        none). Their results go to :meth:`statement_finished`."""

    def statement_started(
        self, conn: psycopg.Connection[Any], plan: Plan, step: Step
    ) -> None: ...

    def statement_finished(
        self,
        conn: psycopg.Connection[Any],
        plan: Plan,
        step: Step,
        seconds: float,
        results: list[list[tuple[Any, ...]]] | None = None,
    ) -> None: ...

    def statement_failed(self, plan: Plan, step: Step) -> None:
        """*step* raised an error: no :meth:`statement_finished` follows."""


def runner_identity() -> str:
    """Who runs the migrations, for the history: ``user@host``."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def display_path(path: os.PathLike[str] | str) -> str:
    """*path* relative to the working directory when it lies below it."""
    text = os.fspath(path)
    try:
        relative = os.path.relpath(text)
    except ValueError:
        return text
    return text if relative.startswith("..") else relative


def retryable(exc: BaseException) -> bool:
    """Whether a failure may go away if the migration is tried again."""
    return isinstance(exc, _RETRYABLE) or is_connection_lost(exc)


class Session:
    """A runner's connection to the target, holding the migration lock."""

    def __init__(
        self,
        target: Target,
        settings: MigrationSettings,
        *,
        purpose: str,
        on_event: EventHandler | None = None,
    ) -> None:
        self.target = target
        self.settings = settings
        self.purpose = purpose
        self.on_event = on_event or (lambda event: None)
        self.tables = HistoryTables(settings.history_schema, settings.history_table)
        self.key = lock.lock_key(settings.history_schema, settings.history_table)
        self.applied_by = runner_identity()
        self.timeouts = Timeouts(
            target.lock_timeout
            if target.lock_timeout is not None
            else settings.lock_timeout,
            target.statement_timeout
            if target.statement_timeout is not None
            else settings.statement_timeout,
        )
        self._conn: psycopg.Connection[Any] | None = None
        self.locked = False
        self.observer: StatementObserver | None = None

    @property
    def conn(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = connect(self.target.url, purpose=self.purpose)
            self.locked = False
        return self._conn

    def lock_and_prepare(self) -> None:
        """Take the migration lock and create the history tables if missing."""
        if not self.locked:
            lock.acquire(self.conn, self.key, self.settings.lock_wait)
            self.locked = True
        for statement in self.tables.create():
            self.conn.execute(statement)

    def reconnect(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None
        self.lock_and_prepare()

    def close(self) -> None:
        if self._conn is not None and not self._conn.closed:
            if self.locked:
                # closing the session releases the lock anyway
                with contextlib.suppress(psycopg.Error):
                    self._conn.execute(lock.release_sql(self.key))
            self._conn.close()
        self._conn = None
        self.locked = False

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read_history(self) -> list[HistoryRow]:
        return self.tables.read(self.conn)

    # -- running a plan ---------------------------------------------------------

    def run(self, plan: Plan, position: int = 1, count: int = 1) -> float:
        """Execute *plan*, retrying transient failures; return the seconds taken.

        A failure raises :class:`MigrationError` that names the file, line and
        column of the statement, with the server's message, detail and hint.
        """
        migration = plan.migration

        def emit(kind: str, seconds: float = 0.0, message: str = "") -> None:
            self.on_event(
                Event(
                    kind, migration, plan.direction, seconds, message, position, count
                )
            )

        emit("start")
        logger.info(
            "%s %s", "applying" if plan.direction == UP else "reverting", migration
        )
        started = time.perf_counter()
        resume_at = 0
        for attempt in range(self.settings.retries + 1):
            try:
                self._execute(plan, resume_at)
                break
            except psycopg.Error as exc:
                failed_at = getattr(exc, "dbamgr_step", 0)
                lost = is_connection_lost(exc)
                self._after_failure(plan, lost)
                if not retryable(exc) or attempt == self.settings.retries:
                    self._record_failure(plan, failed_at, exc, lost)
                    error = self._error(plan, failed_at, exc)
                    emit("failed", 0, error.message)
                    raise error from exc
                delay = self.settings.retry_delay * (2**attempt)
                reason = _first_line(str(exc)) or type(exc).__name__
                logger.warning(
                    "%s of %s failed (%s); retry %d of %d in %.3gs",
                    plan.direction,
                    migration,
                    reason,
                    attempt + 1,
                    self.settings.retries,
                    delay,
                )
                emit("retry", delay, reason)
                time.sleep(delay)
                if lost:
                    self.reconnect()
                    if self._finished_meanwhile(plan):
                        break
                if not plan.in_transaction:
                    resume_at = failed_at
        seconds = time.perf_counter() - started
        emit("done", seconds)
        return seconds

    def _execute(self, plan: Plan, resume_at: int) -> None:
        conn = self.conn
        indexed = list(enumerate(plan.steps))
        if resume_at:
            # settings are per session: restore them, then go on where we failed
            settings = [
                (i, step)
                for i, step in indexed[:resume_at]
                if step.sql.startswith("SET ")
            ]
            indexed = settings + indexed[resume_at:]
        observer = self.observer
        if observer is not None:
            observer.plan_started(conn, plan)
        with conn.cursor() as cur:
            for batch in _batches(indexed):
                first, step = batch[0]
                try:
                    if step.statement is None:
                        # dbamgr's own statements between two of the migration's
                        # travel together: one round trip instead of several
                        cur.execute("; ".join(s.sql for _, s in batch))
                    elif observer is None:
                        logger.debug("%s", step.sql)
                        cur.execute(step.sql)
                    else:
                        logger.debug("%s", step.sql)
                        observer.statement_started(conn, plan, step)
                        trailer = observer.trailer(plan, step)
                        started = time.perf_counter()
                        results = None
                        try:
                            if trailer is None:
                                cur.execute(step.sql)
                            else:
                                # the statement comes first, so that the
                                # server's error positions stay right; the
                                # newline ends a trailing line comment
                                cur.execute(f"{step.sql}\n;\n{trailer}")
                                results = []
                                while cur.nextset():
                                    results.append(cur.fetchall())
                        except psycopg.Error:
                            observer.statement_failed(plan, step)
                            raise
                        seconds = time.perf_counter() - started
                        observer.statement_finished(conn, plan, step, seconds, results)
                except psycopg.Error as exc:
                    exc.dbamgr_step = first  # type: ignore[attr-defined]
                    raise

    def _after_failure(self, plan: Plan, lost: bool) -> None:
        if lost or self._conn is None or self._conn.closed:
            return
        if self._conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            self._conn.execute("ROLLBACK")
        self._conn.execute("RESET ALL")

    def _finished_meanwhile(self, plan: Plan) -> bool:
        """After a lost connection: did the migration commit before it broke?"""
        row = next(
            (r for r in self.read_history() if r.version == plan.migration.version),
            None,
        )
        if plan.direction == UP:
            return row is not None and row.status == APPLIED
        return row is None

    def _record_failure(
        self, plan: Plan, failed_at: int, exc: psycopg.Error, lost: bool
    ) -> None:
        """Outside a transaction the statements before the failure stay done: mark
        the migration failed so that nothing runs until someone resolves it, and
        log the failed run for ``history``."""
        if plan.in_transaction:
            return
        version = plan.migration.version
        try:
            if lost:
                self.reconnect()
            with self.conn.transaction():
                self.conn.execute(
                    self.tables.mark_failed(version, _first_line(str(exc)))
                )
                self.conn.execute(self.tables.log_unfinished(version, FAILED))
        except psycopg.Error:
            logger.warning(
                "could not record the failure of %s; its row says 'running'",
                plan.migration,
            )

    def _error(self, plan: Plan, failed_at: int, exc: psycopg.Error) -> MigrationError:
        step = plan.steps[failed_at] if failed_at < len(plan.steps) else None
        statement = step.statement if step else None
        return migration_failure(plan, statement, exc)


def _batches(indexed: list[tuple[int, Step]]) -> list[list[tuple[int, Step]]]:
    """Group the steps: each of the migration's statements alone, runs of
    dbamgr's own statements together."""
    batches: list[list[tuple[int, Step]]] = []
    for index, step in indexed:
        own = step.statement is None
        if own and batches and batches[-1][0][1].statement is None:
            batches[-1].append((index, step))
        else:
            batches.append([(index, step)])
    return batches


def _first_line(text: str) -> str:
    return text.strip().split("\n", 1)[0]


# errors about a missing object, whose name the message quotes
_NAMES_AN_OBJECT = frozenset({"42703", "42P01", "42883", "42704", "3F000"})
_QUOTED = re.compile(r'"([^"]+)"')


def _locate(
    script: Script, statement: Statement, exc: psycopg.Error
) -> tuple[int, int]:
    """Where in the file the error is: the server's position when it gives one;
    else, for a missing object, the first place the statement names it; else the
    statement's start."""
    position = exc.diag.statement_position
    if position and position.isdigit():
        # past the statement's end is the text verify sends after it: the
        # error is at the statement's end, as when the statement is sent alone
        offset = min(int(position) - 1, len(statement.text))
        return script.locate(statement.start + offset)
    quoted = _QUOTED.search(exc.diag.message_primary or "")
    if exc.sqlstate in _NAMES_AN_OBJECT and quoted:
        name = quoted[1].rsplit(".", 1)[-1]
        found = re.search(
            rf"(?<![\w$]){re.escape(name)}(?![\w$])", statement.text, re.I
        )
        if found:
            return script.locate(statement.start + found.start())
    return statement.line, statement.column


def migration_failure(
    plan: Plan, statement: Statement | None, exc: psycopg.Error
) -> MigrationError:
    """A :class:`MigrationError` that says where *plan* failed and why."""
    migration, script = plan.migration, plan.script
    diag = exc.diag
    sqlstate = exc.sqlstate or "connection"
    message = diag.message_primary or _first_line(str(exc))
    where = display_path(script.path)
    line = column = None
    if statement is not None:
        line, column = _locate(script, statement, exc)
        where = f"{where}:{line}:{column}"
    lines = [
        f'migration "{migration.ident}" failed ({plan.direction}) at {where}',
        f"  ERROR {sqlstate}: {message}",
    ]
    if diag.message_detail:
        lines.append(f"  DETAIL: {diag.message_detail}")
    if diag.message_hint:
        lines.append(f"  HINT: {diag.message_hint}")
    if diag.context:
        lines.append(f"  CONTEXT: {_first_line(diag.context)}")
    if statement is not None:
        excerpt = (
            statement.text
            if len(statement.text) <= 300
            else statement.text[:297] + "..."
        )
        lines.append(f"  statement: {excerpt}")
    if plan.in_transaction:
        hint = (
            "the migration was rolled back and the database is as it was before it; "
            "fix the SQL and run the command again"
        )
    else:
        done = f"the statements before {where}" if statement is not None else "none"
        hint = (
            f"this migration runs outside a transaction, so {done} stay done; it is "
            f"marked failed. Finish or undo it by hand, then run `dbamgr resolve "
            f"{migration.label} --applied` or `--rolled-back`"
        )
        if statement is not None and "CONCURRENTLY" in statement.text.upper():
            hint += (
                ". An interrupted CREATE INDEX CONCURRENTLY leaves an INVALID index: "
                "drop it with DROP INDEX CONCURRENTLY before trying again"
            )
    return MigrationError(
        "\n".join(lines),
        hint=hint,
        migration=migration.ident,
        direction=plan.direction,
        file=str(script.path),
        line=line,
        column=column,
        sqlstate=exc.sqlstate,
        pg_message=message,
        detail=diag.message_detail,
        pg_hint=diag.message_hint,
        statement=statement.text if statement else None,
    )
