"""Explicit locks, triggers, enums, domains and over-long names."""

from __future__ import annotations

import re

from dbamgr.lint.context import Context, ident, literal
from dbamgr.lint.model import DESIGN, LOCK, SCAN, Lock, Rule, Severity
from dbamgr.lint.nodes import (
    Node,
    body,
    constraints,
    contype,
    range_name,
    strings,
)
from dbamgr.lint.rules._registry import analyzer
from dbamgr.lint.text import tokens

RULES = [
    Rule(
        "lock-table",
        Severity.WARNING,
        LOCK,
        "LOCK TABLE",
        "an explicit lock is held until the migration's transaction ends, blocking "
        "what the mode conflicts with for all of that time",
        "take no explicit lock: each statement takes the lock it needs",
    ),
    Rule(
        "create-trigger",
        Severity.WARNING,
        LOCK,
        "CREATE TRIGGER on an existing table",
        "it takes a SHARE ROW EXCLUSIVE lock, which waits for running writes and "
        "blocks new ones meanwhile; the trigger then runs on every write",
        "run it with a short lock_timeout and retries, when the table is quiet",
    ),
    Rule(
        "domain-constraint",
        Severity.WARNING,
        SCAN,
        "constraint on a domain",
        "adding a constraint to a domain checks every column of that type in every "
        "table under lock; domain constraints cannot be changed online later",
        "put the CHECK on the table's columns, or add it NOT VALID and validate",
    ),
    Rule(
        "enum-value-position",
        Severity.NOTE,
        DESIGN,
        "ALTER TYPE … ADD VALUE without BEFORE or AFTER",
        "the value goes at the end of the enum's order, which sorting and "
        "comparisons follow",
        "say where it belongs with BEFORE or AFTER",
    ),
    Rule(
        "create-enum",
        Severity.NOTE,
        DESIGN,
        "CREATE TYPE … AS ENUM",
        "values can be added but not removed or renamed without rewriting every "
        "table that uses the type",
        "a lookup table with a foreign key, or text with a CHECK constraint that can "
        "be replaced NOT VALID",
    ),
    Rule(
        "identifier-too-long",
        Severity.WARNING,
        DESIGN,
        "name longer than 63 bytes",
        "PostgreSQL truncates it silently, so the object gets another name than the "
        "one written, and two long names may collide",
        "a shorter name",
    ),
]


_LONG_WORD = re.compile(r"[^\s,;().]{64,}")


@analyzer("LockStmt")
def lock_table(ctx: Context, stmt: Node) -> None:
    """LOCK TABLE in a mode that blocks writes or reads."""
    mode = Lock(int(stmt.get("mode", Lock.ACCESS_EXCLUSIVE)))
    for relation in stmt.get("relations") or []:
        name = range_name(relation)
        ctx.lock(name, mode)
        if mode >= Lock.SHARE_UPDATE_EXCLUSIVE and not ctx.is_new(name):
            ctx.report(
                "lock-table",
                f'locks "{name}" in {mode.label} mode ({mode.effect}) until the '
                "transaction ends",
                relation=name,
            )


@analyzer("CreateTrigStmt")
def create_trigger(ctx: Context, stmt: Node) -> None:
    """CREATE TRIGGER takes SHARE ROW EXCLUSIVE on its table."""
    name = range_name(stmt.get("relation"))
    ctx.lock(name, Lock.SHARE_ROW_EXCLUSIVE)
    if not ctx.is_new(name):
        ctx.report(
            "create-trigger",
            f'trigger "{stmt.get("trigname", "")}" on "{name}" takes a SHARE ROW '
            "EXCLUSIVE lock",
            relation=name,
            alternative="SET lock_timeout = '2s';\n" + ctx.text.rstrip(";") + ";",
        )


@analyzer("CreateDomainStmt")
def create_domain(ctx: Context, stmt: Node) -> None:
    """A domain created with a CHECK: hard to change online later."""
    if any(contype(c) == "CHECK" for c in constraints(stmt)):
        name = ".".join(strings(stmt.get("domainname")))
        ctx.report(
            "domain-constraint",
            f'domain "{name}" has a CHECK: changing it later checks every column of '
            "the type",
            severity=Severity.NOTE,
        )


@analyzer("AlterDomainStmt")
def alter_domain(ctx: Context, stmt: Node) -> None:
    """ALTER DOMAIN ADD CONSTRAINT checks every column of the domain."""
    if stmt.get("subtype") != "C":
        return
    constraint = body(stmt.get("def", {}))
    if constraint.get("skip_validation"):
        return
    name = ".".join(strings(stmt.get("typeName")))
    conname = constraint.get("conname")
    alternative = None
    if conname:
        text = ctx.text.rstrip().rstrip(";")
        alternative = (
            f"{text} NOT VALID;\nALTER DOMAIN {ident(name)} VALIDATE CONSTRAINT "
            f"{ident(conname)};"
        )
    ctx.report(
        "domain-constraint",
        f'a constraint on domain "{name}" checks every column of that type',
        alternative=alternative,
    )


@analyzer("CreateEnumStmt")
def create_enum(ctx: Context, stmt: Node) -> None:
    """A new enum type: hard to change later."""
    name = ".".join(strings(stmt.get("typeName")))
    values = ", ".join(literal(v) for v in strings(stmt.get("vals")))
    short = name.rpartition(".")[2]
    ctx.report(
        "create-enum",
        f'enum "{name}" can gain values later, but never lose one',
        alternative=f"CREATE TABLE {ident(short + '_values')} (value text PRIMARY KEY);"
        f"\nINSERT INTO {ident(short + '_values')} VALUES "
        + ", ".join(f"({literal(v)})" for v in strings(stmt.get("vals")))
        + ";"
        if values
        else None,
    )


@analyzer("AlterEnumStmt")
def alter_enum(ctx: Context, stmt: Node) -> None:
    """ADD VALUE without a position goes last."""
    value = stmt.get("newVal")
    if value is None or stmt.get("oldVal") is not None:
        return
    if stmt.get("newValNeighbor") is None:
        name = ".".join(strings(stmt.get("typeName")))
        ctx.report(
            "enum-value-position",
            f'{literal(value)} is added at the end of enum "{name}"',
        )


@analyzer(
    "CreateStmt",
    "IndexStmt",
    "AlterTableStmt",
    "RenameStmt",
    "CreateTrigStmt",
    "ViewStmt",
    "CreateTableAsStmt",
    "CreateSeqStmt",
)
def long_names(ctx: Context, stmt: Node) -> None:
    """Names over 63 bytes, which PostgreSQL truncates (the parser already has)."""
    if not _LONG_WORD.search(ctx.text):
        return
    for token in tokens(ctx.text):
        if token.name != "IDENT":
            continue
        word = ctx.text[token.start : token.end + 1].strip('"')
        size = len(word.encode())
        if size > 63:
            kept = word.encode()[:63].decode("utf-8", "ignore")
            ctx.report(
                "identifier-too-long",
                f'"{word}" is {size} bytes: PostgreSQL keeps "{kept}"',
            )
