"""Constraints: validation scans, index builds under lock, FK locks on two tables."""

from __future__ import annotations

import re

from dbamgr.lint.context import ident, join_sql
from dbamgr.lint.model import COMPAT, INDEX_BUILD, SCAN, Lock, Rule, Severity
from dbamgr.lint.nodes import (
    Node,
    column_refs,
    contype,
    not_null_check_column,
    range_name,
    strings,
)
from dbamgr.lint.rules.alter import Command, handles

RULES = [
    Rule(
        "add-check-constraint",
        Severity.WARNING,
        SCAN,
        "CHECK constraint added without NOT VALID",
        "every row is checked while an ACCESS EXCLUSIVE lock blocks reads and writes",
        "add it NOT VALID (instant), then VALIDATE CONSTRAINT, which scans under a "
        "SHARE UPDATE EXCLUSIVE lock that lets reads and writes go on",
    ),
    Rule(
        "add-foreign-key",
        Severity.WARNING,
        SCAN,
        "foreign key added without NOT VALID",
        "the referencing table is scanned while SHARE ROW EXCLUSIVE locks on both "
        "tables block their writes",
        "add it NOT VALID, then VALIDATE CONSTRAINT, which lets writes go on",
    ),
    Rule(
        "add-unique-constraint",
        Severity.WARNING,
        INDEX_BUILD,
        "UNIQUE constraint added without USING INDEX",
        "the unique index is built while an ACCESS EXCLUSIVE lock blocks reads and "
        "writes; it fails if duplicates exist",
        "CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT … UNIQUE USING INDEX",
    ),
    Rule(
        "add-primary-key",
        Severity.WARNING,
        INDEX_BUILD,
        "PRIMARY KEY added without USING INDEX",
        "the index is built (and the columns checked for NULL) while an ACCESS "
        "EXCLUSIVE lock blocks reads and writes",
        "CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT … PRIMARY KEY USING "
        "INDEX",
    ),
    Rule(
        "primary-key-sets-not-null",
        Severity.WARNING,
        SCAN,
        "PRIMARY KEY USING INDEX on columns that may hold NULL",
        "the primary key makes its columns NOT NULL: each nullable one is checked "
        "with a full scan under the ACCESS EXCLUSIVE lock",
        "make the columns NOT NULL first, through a validated CHECK (col IS NOT "
        "NULL), which skips the scan from PostgreSQL 12",
    ),
    Rule(
        "add-exclusion-constraint",
        Severity.WARNING,
        INDEX_BUILD,
        "EXCLUDE constraint on an existing table",
        "the index behind it is built under an ACCESS EXCLUSIVE lock, and an "
        "exclusion constraint cannot be added from an existing index",
        "add it when the table is new or small, or in a maintenance window",
    ),
    Rule(
        "drop-constraint",
        Severity.NOTE,
        COMPAT,
        "DROP CONSTRAINT",
        "code and other constraints may rely on the guarantee it gave; putting it "
        "back later needs a scan or an index build",
    ),
]

_ADD = re.compile(r"^ADD\s+", re.I)


def _name(cmd: Command, constraint: Node, suffix: str, columns: list[str]) -> str:
    if constraint.get("conname"):
        return str(constraint["conname"])
    middle = "_".join(columns) if columns else ""
    return (
        f"{cmd.short_name}_{middle}_{suffix}"
        if middle
        else f"{cmd.short_name}_{suffix}"
    )


def _named(cmd: Command, constraint: Node, name: str) -> str | None:
    """The command's text, naming the constraint if it was unnamed."""
    text = cmd.text
    if text is None:
        return None
    if constraint.get("conname"):
        return text
    return _ADD.sub(f"ADD CONSTRAINT {ident(name)} ", text, count=1)


def _not_valid(cmd: Command, constraint: Node, name: str) -> str | None:
    text = _named(cmd, constraint, name)
    if text is None:
        return None
    return join_sql(
        [
            f"ALTER TABLE {cmd.table} {text} NOT VALID",
            f"ALTER TABLE {cmd.table} VALIDATE CONSTRAINT {ident(name)}",
        ]
    )


def _track_check(cmd: Command, constraint: Node, validated: bool) -> None:
    column = not_null_check_column(constraint.get("raw_expr"))
    state = cmd.ctx.schema.ensure(cmd.relation)
    if column is not None and state is not None:
        name = _name(cmd, constraint, "check", [column])
        state.checks[name] = (column, validated)


@handles("AT_AddConstraint")
def add_constraint(cmd: Command) -> None:
    """Constraints added to a table: each kind has its own hazard."""
    constraint = cmd.definition
    kind = contype(constraint)
    validated = not constraint.get("skip_validation", False)
    if kind == "CHECK":
        _track_check(cmd, constraint, validated)
    if kind == "FOREIGN":
        foreign_key(cmd, constraint, validated)
        return
    if cmd.new:
        return
    if kind == "CHECK" and validated:
        columns = column_refs(constraint.get("raw_expr"))[:1]
        name = _name(cmd, constraint, "check", columns)
        cmd.ctx.lock(cmd.relation, Lock.ACCESS_EXCLUSIVE, scan=True)
        cmd.ctx.report(
            "add-check-constraint",
            f'CHECK constraint "{name}" scans "{cmd.relation}" under an ACCESS '
            "EXCLUSIVE lock",
            relation=cmd.relation,
            work="scan",
            alternative=_not_valid(cmd, constraint, name),
        )
    elif kind in ("UNIQUE", "PRIMARY") and not constraint.get("indexname"):
        unique(cmd, constraint, kind)
    elif kind == "PRIMARY":
        _primary_key_using_index(cmd, str(constraint["indexname"]))
    elif kind == "NOTNULL" and validated:
        _not_null_constraint(cmd, strings(constraint.get("keys")))
    elif kind == "EXCLUSION":
        cmd.ctx.lock(cmd.relation, Lock.ACCESS_EXCLUSIVE, scan=True)
        cmd.ctx.report(
            "add-exclusion-constraint",
            f'the exclusion constraint builds an index on "{cmd.relation}" under an '
            "ACCESS EXCLUSIVE lock",
            relation=cmd.relation,
            work="index",
        )


def foreign_key(
    cmd: Command,
    constraint: Node,
    validated: bool,
    columns: list[str] | None = None,
    prefix: str | None = None,
) -> None:
    """A foreign key: SHARE ROW EXCLUSIVE on both tables; a scan unless NOT VALID."""
    ctx = cmd.ctx
    target = range_name(constraint.get("pktable"))
    ctx.lock(target, Lock.SHARE_ROW_EXCLUSIVE)
    if cmd.new or not validated:
        return
    ctx.lock(cmd.relation, Lock.SHARE_ROW_EXCLUSIVE, scan=True)
    columns = columns or strings(constraint.get("fk_attrs"))
    name = _name(cmd, constraint, "fkey", columns)
    if prefix is None:
        alternative = _not_valid(cmd, constraint, name)
    else:
        refs = strings(constraint.get("pk_attrs"))
        listing = f" ({', '.join(ident(r) for r in refs)})" if refs else ""
        alternative = (
            prefix
            + "\n"
            + join_sql(
                [
                    f"ALTER TABLE {cmd.table} ADD CONSTRAINT {ident(name)} FOREIGN KEY "
                    f"({', '.join(ident(c) for c in columns)}) REFERENCES "
                    f"{ident(target)}{listing} NOT VALID",
                    f"ALTER TABLE {cmd.table} VALIDATE CONSTRAINT {ident(name)}",
                ]
            )
        )
    ctx.report(
        "add-foreign-key",
        f'foreign key "{name}" scans "{cmd.relation}" while writes to it and to '
        f'"{target}" are blocked',
        relation=cmd.relation,
        work="scan",
        alternative=alternative,
    )


def unique(
    cmd: Command,
    constraint: Node,
    kind: str,
    columns: list[str] | None = None,
    prefix: str | None = None,
) -> None:
    """A UNIQUE or PRIMARY KEY constraint built with its index under lock."""
    ctx = cmd.ctx
    columns = columns or strings(constraint.get("keys"))
    primary = kind == "PRIMARY"
    name = _name(
        cmd, constraint, "pkey" if primary else "key", [] if primary else columns
    )
    ctx.lock(cmd.relation, Lock.ACCESS_EXCLUSIVE, scan=True)
    listing = ", ".join(ident(c) for c in columns)
    what = "PRIMARY KEY" if primary else "UNIQUE"
    steps = [
        "-- in a migration whose first line is -- dbamgr:no-transaction\n"
        f"CREATE UNIQUE INDEX CONCURRENTLY {ident(name)} ON {cmd.table} ({listing})"
    ]
    state = ctx.schema.table(cmd.relation)
    known = state.not_null if state is not None else set()
    if primary and ctx.pg >= 12:
        steps += _not_null_steps(cmd, [c for c in columns if c not in known])
    steps.append(
        f"ALTER TABLE {cmd.table} ADD CONSTRAINT {ident(name)} {what} USING INDEX "
        f"{ident(name)}"
    )
    alternative = (prefix + "\n" if prefix else "") + join_sql(steps)
    ctx.report(
        "add-primary-key" if primary else "add-unique-constraint",
        f'{what} on "{cmd.relation}" ({", ".join(columns)}) builds its index under an '
        "ACCESS EXCLUSIVE lock",
        relation=cmd.relation,
        work="index",
        alternative=alternative,
    )


def _not_null_constraint(cmd: Command, columns: list[str]) -> None:
    """ADD CONSTRAINT … NOT NULL col (PostgreSQL 18): SET NOT NULL by another name."""
    ctx = cmd.ctx
    state = ctx.schema.ensure(cmd.relation)
    if state is not None:
        state.not_null.update(columns)
    pending = [
        c for c in columns if not ctx.schema.has_valid_not_null_check(cmd.relation, c)
    ]
    if not pending:
        return
    ctx.lock(cmd.relation, Lock.ACCESS_EXCLUSIVE, scan=True)
    ctx.report(
        "set-not-null",
        f'NOT NULL on "{cmd.relation}" ({", ".join(pending)}) scans the table under an '
        "ACCESS EXCLUSIVE lock",
        relation=cmd.relation,
        work="scan",
        alternative=join_sql(_not_null_steps(cmd, pending)),
    )


def _not_null_steps(cmd: Command, columns: list[str]) -> list[str]:
    """SET NOT NULL without a scan under lock: a validated CHECK first."""
    table = cmd.table
    steps = []
    for column in columns:
        check = ident(f"{cmd.short_name}_{column}_not_null")
        col = ident(column)
        steps += [
            f"ALTER TABLE {table} ADD CONSTRAINT {check} CHECK ({col} IS NOT NULL) "
            "NOT VALID",
            f"ALTER TABLE {table} VALIDATE CONSTRAINT {check}",
            f"ALTER TABLE {table} ALTER COLUMN {col} SET NOT NULL",
            f"ALTER TABLE {table} DROP CONSTRAINT {check}",
        ]
    return steps


def _primary_key_using_index(cmd: Command, index: str) -> None:
    schema = cmd.relation.rpartition(".")[0]
    nullable = cmd.ctx.schema.nullable_index_columns(
        f"{schema}.{index}" if schema else index
    )
    if nullable == []:
        return
    if nullable is None:
        what = "its columns, unless already NOT NULL, are"
        steps: list[str] = []
    else:
        what = f"{', '.join(nullable)} {'is' if len(nullable) == 1 else 'are'}"
        steps = _not_null_steps(cmd, nullable)
    cmd.ctx.lock(cmd.relation, Lock.ACCESS_EXCLUSIVE, scan=True)
    cmd.ctx.report(
        "primary-key-sets-not-null",
        f'the primary key on "{cmd.relation}" using index "{index}": {what} '
        "checked for NULL by a full scan under lock",
        relation=cmd.relation,
        work="scan",
        alternative=join_sql([*steps, cmd.ctx.text])
        if steps and cmd.ctx.pg >= 12
        else None,
    )


@handles("AT_ValidateConstraint")
def validate_constraint(cmd: Command) -> None:
    """VALIDATE CONSTRAINT is the safe path; it records the check as validated."""
    name = cmd.node.get("name", "")
    state = cmd.ctx.schema.ensure(cmd.relation)
    if state is not None and name in state.checks:
        state.checks[name] = (state.checks[name][0], True)


@handles("AT_DropConstraint")
def drop_constraint(cmd: Command) -> None:
    """DROP CONSTRAINT: a compatibility note on existing tables."""
    name = cmd.node.get("name", "")
    state = cmd.ctx.schema.ensure(cmd.relation)
    if state is not None:
        state.checks.pop(name, None)
    if not cmd.new:
        cmd.ctx.report(
            "drop-constraint",
            f'drops constraint "{name}" of "{cmd.relation}"',
            relation=cmd.relation,
        )
