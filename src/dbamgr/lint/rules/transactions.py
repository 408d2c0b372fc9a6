"""Hazards of a script as a whole: what runs in a transaction, and for how long.

Unlike the other rule modules, these rules follow the script from statement to
statement: :class:`TransactionTracker` is told about each statement before and
after its own rules ran.
"""

from __future__ import annotations

from dbamgr.lint.context import Context, ident, literal
from dbamgr.lint.model import TRANSACTION, Lock, Rule, Severity
from dbamgr.lint.nodes import Node, body, object_names, range_name
from dbamgr.lint.text import command_spans, insert_after_keyword

RULES = [
    Rule(
        "not-allowed-in-transaction",
        Severity.ERROR,
        TRANSACTION,
        "statement that cannot run inside a transaction",
        "PostgreSQL refuses it in a transaction block, so the migration fails",
        "put it in its own migration whose first line is -- dbamgr:no-transaction",
    ),
    Rule(
        "transaction-control",
        Severity.ERROR,
        TRANSACTION,
        "BEGIN, COMMIT or ROLLBACK in a migration",
        "dbamgr wraps each migration in its own transaction; a script's own "
        "transaction control nests, ends it early, or is left open",
        "remove it, or mark the file -- dbamgr:no-transaction and close every BEGIN",
    ),
    Rule(
        "access-exclusive-held",
        Severity.WARNING,
        TRANSACTION,
        "statements run while an ACCESS EXCLUSIVE lock is held",
        "a lock is kept until the transaction ends: every later statement of the "
        "migration makes all reads and writes of the locked table wait longer",
        "put the statement that takes the lock last, or in a migration of its own",
    ),
    Rule(
        "multiple-alter-table",
        Severity.NOTE,
        TRANSACTION,
        "several ALTER TABLE on the same table",
        "each statement queues for the lock again and holds it longer; one ALTER "
        "TABLE with several commands takes it once and checks the table once",
        "combine the commands into one ALTER TABLE",
    ),
    Rule(
        "missing-lock-timeout",
        Severity.NOTE,
        TRANSACTION,
        "no lock_timeout before a statement that waits for a strong lock",
        "dbamgr sets lock_timeout when it runs the file; run by another tool, a "
        "statement queued behind a long query blocks everyone queued after it",
        "SET lock_timeout = '5s' at the top of the file",
    ),
    Rule(
        "missing-statement-timeout",
        Severity.NOTE,
        TRANSACTION,
        "no statement_timeout before a statement that may run long under lock",
        "without a limit a slow statement holds its lock for as long as it takes",
        "SET statement_timeout at the top of the file, or [migrations] "
        "statement_timeout in dbamgr.toml",
    ),
    Rule(
        "prefer-robust-statements",
        Severity.NOTE,
        TRANSACTION,
        "statement outside a transaction that cannot run twice",
        "outside a transaction a failure leaves the statements before it done: a "
        "second run must be able to pass over them",
        "IF NOT EXISTS / IF EXISTS; for CREATE INDEX CONCURRENTLY, drop a leftover "
        "invalid index first",
    ),
    Rule(
        "enum-value-used-in-transaction",
        Severity.ERROR,
        TRANSACTION,
        "new enum value used in the transaction that adds it",
        "PostgreSQL refuses to use a value added by ALTER TYPE … ADD VALUE before "
        "the transaction commits",
        "add the value in its own migration",
    ),
]

_TRIVIAL = frozenset(
    {"VariableSetStmt", "VariableShowStmt", "TransactionStmt", "CommentStmt"}
)
_NO_TRANSACTION = (
    "-- in its own migration whose first line is -- dbamgr:no-transaction\n"
)


def no_transaction_reason(kind: str, stmt: Node, pg_version: int) -> str | None:
    """Why a statement cannot run in a transaction block, or None if it can."""
    if kind in ("IndexStmt", "DropStmt") and stmt.get("concurrent"):
        return "CONCURRENTLY cannot run inside a transaction"
    if kind == "ReindexStmt":
        options = {body(p).get("defname") for p in stmt.get("params") or []}
        if "concurrently" in options:
            return "REINDEX CONCURRENTLY cannot run inside a transaction"
        if str(stmt.get("kind", "")).endswith(("SCHEMA", "DATABASE", "SYSTEM")):
            return "REINDEX SCHEMA/DATABASE/SYSTEM cannot run inside a transaction"
    if kind == "AlterTableStmt":
        for cmd in stmt.get("cmds") or []:
            part = body(body(cmd).get("def", {}))
            if body(cmd).get("subtype") == "AT_DetachPartition" and part.get(
                "concurrent"
            ):
                return "DETACH PARTITION CONCURRENTLY cannot run inside a transaction"
    if kind == "VacuumStmt" and stmt.get("is_vacuumcmd"):
        return "VACUUM cannot run inside a transaction"
    if kind == "ClusterStmt" and not stmt.get("relation"):
        return "CLUSTER of every table cannot run inside a transaction"
    if kind in ("CreatedbStmt", "DropdbStmt", "AlterSystemStmt"):
        return "database-level commands cannot run inside a transaction"
    if kind in ("CreateTableSpaceStmt", "DropTableSpaceStmt"):
        return "tablespace commands cannot run inside a transaction"
    if kind == "AlterEnumStmt" and pg_version < 12 and stmt.get("newVal"):
        return (
            "before PostgreSQL 12, ALTER TYPE … ADD VALUE cannot run inside a "
            "transaction"
        )
    return None


def _commands(text: str, location: int) -> list[str]:
    """The command texts of an ALTER TABLE whose relation is at *location*."""
    return [text[a:b].strip() for a, b in command_spans(text, location)]


class TransactionTracker:
    """Follows one script: transactions, locks held, timeouts set."""

    def __init__(self, ctx: Context, script_in_transaction: bool) -> None:
        self.ctx = ctx
        self.script_in_transaction = script_in_transaction
        self.explicit: tuple[int, int, str] | None = None
        self.held: dict[str, int] = {}
        self.held_reported = False
        self.alter_commands: dict[str, list[tuple[str, int]]] = {}
        self.combined_reported: set[str] = set()
        self.lock_timeout = False
        self.statement_timeout = False
        self.lock_timeout_reported = False
        self.statement_timeout_reported = False
        self.enum_values: list[str] = []
        self.dropped_if_exists: set[str] = set()

    @property
    def in_transaction(self) -> bool:
        """Whether the current statement runs inside a transaction."""
        return self.script_in_transaction or self.explicit is not None

    def _end_transaction(self) -> None:
        self.held = {}
        self.held_reported = False
        self.alter_commands = {}
        self.combined_reported = set()
        self.enum_values = []

    def before(self, kind: str, stmt: Node) -> None:
        """Checks that depend on what ran before this statement."""
        ctx = self.ctx
        if kind == "TransactionStmt":
            self._transaction(stmt)
            ctx.in_transaction = self.in_transaction
            return
        ctx.in_transaction = self.in_transaction
        if self.in_transaction:
            reason = no_transaction_reason(kind, stmt, ctx.pg)
            if reason is not None:
                ctx.report(
                    "not-allowed-in-transaction",
                    reason,
                    alternative=_NO_TRANSACTION + ctx.text.rstrip(";") + ";",
                )
            for value in self.enum_values:
                if literal(value) in ctx.text:
                    ctx.report(
                        "enum-value-used-in-transaction",
                        f"{literal(value)} is used in the transaction that adds it",
                    )
        else:
            self._robust(kind, stmt)

    def _transaction(self, stmt: Node) -> None:
        ctx = self.ctx
        what = str(stmt.get("kind", "")).removeprefix("TRANS_STMT_")
        if what in ("SAVEPOINT", "RELEASE", "ROLLBACK_TO"):
            return
        if self.script_in_transaction:
            ctx.report(
                "transaction-control",
                f"{what} inside a migration that dbamgr runs in a transaction",
            )
            return
        if what in ("BEGIN", "START"):
            if self.explicit is not None:
                ctx.report(
                    "transaction-control",
                    f"BEGIN inside the transaction opened at line {self.explicit[0]}",
                )
            self.explicit = (ctx.line, ctx.column, ctx.text)
            self._end_transaction()
        elif what in ("COMMIT", "ROLLBACK"):
            if self.explicit is None:
                ctx.report(
                    "transaction-control",
                    f"{what} with no open transaction",
                    severity=Severity.WARNING,
                )
            self.explicit = None
            self._end_transaction()

    def _held(self, kind: str, stmt: Node) -> None:
        ctx = self.ctx
        relation = range_name(stmt.get("relation")) if kind == "AlterTableStmt" else ""
        if relation and relation in self.alter_commands and len(self.held) == 1:
            if relation in self.combined_reported:
                return
            self.combined_reported.add(relation)
            location = (stmt.get("relation") or {}).get("location", -1)
            earlier = self.alter_commands[relation] + [(ctx.text, location)]
            combined = [part for text, at in earlier for part in _commands(text, at)]
            ctx.report(
                "multiple-alter-table",
                f'"{relation}" is altered again in the same transaction',
                relation=relation,
                alternative=f"ALTER TABLE {ident(relation)}\n    "
                + ",\n    ".join(combined)
                + ";",
            )
            return
        if self.held_reported:
            return
        self.held_reported = True
        listing = ", ".join(f'"{r}" (line {line})' for r, line in self.held.items())
        severity = None
        message = (
            f"runs while ACCESS EXCLUSIVE is held on {listing}: reads and writes of "
            "it wait for this statement too"
        )
        if ctx.schema.live is not None:
            seconds = ctx.estimate or 0.0
            settings = ctx.settings
            message += f" (about {seconds:.3g} s)" if seconds else " (briefly)"
            if seconds >= settings.error_after:
                severity = Severity.ERROR
            elif seconds < settings.warn_after:
                severity = Severity.NOTE
        ctx.report("access-exclusive-held", message, severity=severity)

    def _robust(self, kind: str, stmt: Node) -> None:
        ctx = self.ctx
        concurrent = stmt.get("concurrent", False)
        edited = None
        message = "outside a transaction, a second run of this file fails here"
        if kind == "DropStmt" and stmt.get("missing_ok"):
            self.dropped_if_exists.update(object_names(stmt.get("objects")))
        if kind == "IndexStmt" and concurrent:
            name = stmt.get("idxname")
            schema = range_name(stmt.get("relation")).rpartition(".")[0]
            qualified = f"{schema}.{name}" if schema else str(name)
            if stmt.get("if_not_exists"):
                message = (
                    "IF NOT EXISTS passes over the INVALID index a failed run leaves"
                )
            if name and qualified not in self.dropped_if_exists:
                edited = (
                    f"DROP INDEX CONCURRENTLY IF EXISTS {ident(qualified)};\n"
                    + ctx.text.rstrip(";")
                    + ";"
                )
        elif kind == "DropStmt" and not stmt.get("missing_ok"):
            keyword = "CONCURRENTLY" if concurrent else None
            text = (
                insert_after_keyword(ctx.text, keyword, "IF EXISTS")
                if keyword
                else None
            )
            if text is None and stmt.get("removeType") in (
                "OBJECT_INDEX",
                "OBJECT_TABLE",
            ):
                text = insert_after_keyword(
                    ctx.text,
                    str(stmt["removeType"]).removeprefix("OBJECT_"),
                    "IF EXISTS",
                )
            edited = text + ";" if text else None
        elif kind == "CreateStmt" and not stmt.get("if_not_exists"):
            text = insert_after_keyword(ctx.text, "TABLE", "IF NOT EXISTS")
            edited = text + ";" if text else None
        if edited is not None:
            ctx.report("prefer-robust-statements", message, alternative=edited)

    def after(self, kind: str, stmt: Node) -> None:
        """Record what this statement leaves behind: locks held, timeouts set."""
        ctx = self.ctx
        if self.in_transaction and self.held and kind not in _TRIVIAL:
            self._held(kind, stmt)
        if kind == "VariableSetStmt":
            name = stmt.get("name", "")
            if name == "lock_timeout":
                self.lock_timeout = True
            elif name == "statement_timeout":
                self.statement_timeout = True
            return
        if kind == "AlterEnumStmt" and self.in_transaction and stmt.get("newVal"):
            self.enum_values.append(str(stmt["newVal"]))
        strong = [c for c in ctx.locks if not c.new_relation and c.lock >= Lock.SHARE]
        if strong:
            if not self.lock_timeout and not self.lock_timeout_reported:
                self.lock_timeout_reported = True
                ctx.report(
                    "missing-lock-timeout",
                    f'waits for {strong[0].lock.label} on "{strong[0].relation}" with '
                    "no lock_timeout set in the file",
                    alternative="SET lock_timeout = '5s';",
                )
            slow = any(c.rewrite or c.scan for c in strong)
            if (
                slow
                and not self.statement_timeout
                and not self.statement_timeout_reported
            ):
                self.statement_timeout_reported = True
                ctx.report(
                    "missing-statement-timeout",
                    "may run long under lock with no statement_timeout set in the file",
                    alternative="SET statement_timeout = '15min';",
                )
        if not self.in_transaction:
            return
        for claim in ctx.locks:
            if claim.lock is Lock.ACCESS_EXCLUSIVE and not claim.new_relation:
                self.held.setdefault(claim.relation, ctx.line)
        if kind == "AlterTableStmt":
            relation = range_name(stmt.get("relation"))
            if relation in self.held:
                location = (stmt.get("relation") or {}).get("location", -1)
                self.alter_commands.setdefault(relation, []).append(
                    (ctx.text, location)
                )

    def finish(self) -> tuple[int, int, str] | None:
        """The BEGIN left open at the end of the script, if any."""
        return self.explicit
