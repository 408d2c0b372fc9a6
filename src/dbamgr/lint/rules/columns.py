"""Column changes: new columns that rewrite or fail, type changes, NOT NULL, drops."""

from __future__ import annotations

from dbamgr.lint.context import Context, ident, join_sql
from dbamgr.lint.model import COMPAT, DATA_LOSS, REWRITE, SCAN, Lock, Rule, Severity
from dbamgr.lint.nodes import Node, column_type, constraints, contype, function_names
from dbamgr.lint.rules.alter import Command, handles
from dbamgr.lint.rules.constraints import foreign_key, unique
from dbamgr.lint.rules.types import _ALL_SERIALS, advise
from dbamgr.lint.text import type_span
from dbamgr.lint.typechange import judge

RULES = [
    Rule(
        "add-column-volatile-default",
        Severity.WARNING,
        REWRITE,
        "new column with a volatile default",
        "a default computed per row (random(), gen_random_uuid(), clock_timestamp(), "
        "nextval()…) is written into every row: the table is rewritten under an "
        "ACCESS EXCLUSIVE lock. Before PostgreSQL 11 any default does this",
        "add the column without a default, set the default, backfill in batches",
    ),
    Rule(
        "add-auto-increment-column",
        Severity.WARNING,
        REWRITE,
        "new serial or identity column on an existing table",
        "every existing row needs a value from the sequence: the table is rewritten "
        "under an ACCESS EXCLUSIVE lock",
        "add a nullable bigint column, attach a sequence as its default, backfill "
        "in batches, then add the identity or NOT NULL",
    ),
    Rule(
        "add-stored-generated-column",
        Severity.WARNING,
        REWRITE,
        "new stored generated column on an existing table",
        "the expression is computed and stored for every row: the table is "
        "rewritten under an ACCESS EXCLUSIVE lock",
        "add a plain column, fill it with a trigger and batched updates; on "
        "PostgreSQL 18 a VIRTUAL generated column needs no rewrite",
    ),
    Rule(
        "add-required-column",
        Severity.WARNING,
        COMPAT,
        "new NOT NULL column without a default",
        "it fails on a table that has rows, and application code still running "
        "the old version fails on every INSERT that does not name the column",
        "add it with a DEFAULT (no rewrite since PostgreSQL 11), or nullable first",
    ),
    Rule(
        "change-column-type",
        Severity.WARNING,
        REWRITE,
        "column type change that rewrites the table",
        "the table and its indexes are rewritten under an ACCESS EXCLUSIVE lock, "
        "blocking reads and writes; clients expecting the old type may break",
        "add a new column, keep it in sync with a trigger, backfill in batches, "
        "then swap the names in one short transaction",
    ),
    Rule(
        "set-not-null",
        Severity.WARNING,
        SCAN,
        "SET NOT NULL on an existing column",
        "the whole table is scanned under an ACCESS EXCLUSIVE lock to prove there "
        "is no NULL, blocking reads and writes; old code writing NULL then fails",
        "validate a CHECK (col IS NOT NULL) first: SET NOT NULL then skips the scan "
        "(PostgreSQL 12+)",
    ),
    Rule(
        "drop-not-null",
        Severity.NOTE,
        COMPAT,
        "DROP NOT NULL",
        "code reading the column may assume it is never NULL, and putting the "
        "constraint back later needs a full scan",
    ),
    Rule(
        "drop-column",
        Severity.WARNING,
        DATA_LOSS,
        "DROP COLUMN",
        "the column's data is gone, and application code still running the old "
        "version fails on every query that names it",
        "first deploy code that no longer reads or writes it; keep a copy if the "
        "data may be needed",
    ),
]

_VOLATILE = frozenset(
    {
        "random",
        "random_normal",
        "gen_random_uuid",
        "uuid_generate_v1",
        "uuid_generate_v1mc",
        "uuid_generate_v4",
        "uuidv4",
        "uuidv7",
        "clock_timestamp",
        "timeofday",
        "nextval",
        "txid_current",
        "pg_current_xact_id",
        "setseed",
    }
)
_STABLE = frozenset(
    {
        "now",
        "statement_timestamp",
        "transaction_timestamp",
        "current_setting",
        "to_timestamp",
        "to_char",
        "to_date",
        "lower",
        "upper",
        "length",
        "concat",
        "jsonb_build_object",
        "jsonb_build_array",
        "json_build_object",
        "to_jsonb",
        "make_date",
        "make_interval",
        "make_timestamp",
        "make_timestamptz",
        "date_trunc",
        "timezone",
        "abs",
        "round",
        "md5",
        "array_fill",
    }
)


def volatile_functions(ctx: Context, expression: Node) -> tuple[list[str], list[str]]:
    """(volatile, unknown) functions an expression calls."""
    names = function_names(expression)
    volatile = [n for n in names if n in _VOLATILE]
    unknown = [n for n in names if n not in _VOLATILE and n not in _STABLE]
    live = ctx.schema.live
    if unknown and live is not None:
        found = live.volatility(unknown)
        volatile += [n for n in unknown if found[n] == "v"]
        unknown = [n for n in unknown if found[n] is None]
    return volatile, unknown


def _type_text(ctx: Context, column_def: Node) -> str:
    type_node = column_def.get("typeName") or {}
    span = type_span(ctx.text, type_node.get("location", -1))
    if span is not None:
        return ctx.text[span[0] : span[1]]
    return str(column_type(type_node) or "")


@handles("AT_AddColumn")
def add_column(cmd: Command) -> None:
    """New columns: type advice, rewrites, required columns, inline constraints."""
    ctx = cmd.ctx
    column = cmd.definition
    name = column.get("colname", "")
    advise(ctx, cmd.relation, column, key=False)
    state = ctx.schema.ensure(cmd.relation)
    found = column_type(column.get("typeName"))
    if state is not None and found is not None:
        state.columns[name] = found
    ctx.schema.created.add(f"{ctx.schema.key(cmd.relation)}:{name}")
    if cmd.new:
        return
    kinds = {contype(c): c for c in constraints(column)}
    col = ident(name)
    type_text = _type_text(ctx, column)
    plain = cmd.alter(f"ADD COLUMN {col} {type_text}")
    if (found is not None and found.name in _ALL_SERIALS) or "IDENTITY" in kinds:
        ctx.lock(cmd.relation, Lock.ACCESS_EXCLUSIVE, rewrite=True)
        ctx.report(
            "add-auto-increment-column",
            f'adding "{name}" to "{cmd.relation}" fills it for every row: the table '
            "is rewritten",
            relation=cmd.relation,
            work="rewrite",
            alternative=_auto_increment_alternative(cmd, col),
        )
    elif "GENERATED" in kinds and kinds["GENERATED"].get("generated_kind") != "v":
        ctx.lock(cmd.relation, Lock.ACCESS_EXCLUSIVE, rewrite=True)
        ctx.report(
            "add-stored-generated-column",
            f'stored generated column "{name}" is computed for every row of '
            f'"{cmd.relation}": the table is rewritten',
            relation=cmd.relation,
            work="rewrite",
            alternative=plain if ctx.pg < 18 else None,
        )
    default = kinds.get("DEFAULT")
    if default is not None:
        _check_default(cmd, name, default, plain)
    elif "NOTNULL" in kinds and not ({"IDENTITY", "GENERATED"} & kinds.keys()):
        _required(cmd, name, col, type_text)
    _inline_constraints(cmd, name, kinds, plain)


def _inline_constraints(
    cmd: Command, name: str, kinds: dict[str, Node], plain: str
) -> None:
    for kind in ("PRIMARY", "UNIQUE"):
        if kind in kinds:
            unique(cmd, kinds[kind], kind, [name], prefix=plain)
    if "FOREIGN" in kinds:
        foreign_key(cmd, kinds["FOREIGN"], True, [name], prefix=plain)
    check = kinds.get("CHECK")
    if check is not None and not check.get("skip_validation"):
        cmd.ctx.lock(cmd.relation, Lock.ACCESS_EXCLUSIVE, scan=True)
        cmd.ctx.report(
            "add-check-constraint",
            f'the CHECK on new column "{name}" scans "{cmd.relation}" under an '
            "ACCESS EXCLUSIVE lock",
            relation=cmd.relation,
            work="scan",
        )


def _auto_increment_alternative(cmd: Command, col: str) -> str:
    seq = ident(f"{cmd.short_name}_{col.strip(chr(34))}_seq")
    return join_sql(
        [
            f"CREATE SEQUENCE {seq}",
            f"ALTER TABLE {cmd.table} ADD COLUMN {col} bigint",
            f"ALTER TABLE {cmd.table} ALTER COLUMN {col} SET DEFAULT nextval('{seq}')",
            "-- backfill existing rows in batches, outside the migration:\n"
            f"-- UPDATE {cmd.table} SET {col} = nextval('{seq}') WHERE {col} IS NULL "
            "AND <key range>",
            f"ALTER SEQUENCE {seq} OWNED BY {cmd.table}.{col}",
        ]
    )


def _check_default(cmd: Command, name: str, default: Node, plain: str) -> None:
    ctx = cmd.ctx
    expression = default.get("raw_expr") or {}
    if expression.get("A_Const", {}).get("isnull"):
        return
    volatile, unknown = volatile_functions(ctx, expression)
    if ctx.pg < 11:
        reason = "before PostgreSQL 11, a default is written into every row"
    elif volatile:
        reason = f"{', '.join(volatile)}() is volatile: its value is written per row"
    elif unknown:
        reason = (
            f"{', '.join(unknown)}() is unknown here: unless it is declared STABLE "
            "or IMMUTABLE, its value is written per row"
        )
    else:
        return
    ctx.lock(cmd.relation, Lock.ACCESS_EXCLUSIVE, rewrite=True)
    default_text = cmd.text or ""
    keyword = default_text.upper().find("DEFAULT")
    expression_text = (
        default_text[keyword + len("DEFAULT") :].strip() if keyword >= 0 else ""
    )
    alternative = plain
    if expression_text:
        alternative += "\n" + cmd.alter(
            f"ALTER COLUMN {ident(name)} SET DEFAULT {expression_text}"
        )
    alternative += "\n-- then backfill existing rows in batches, outside the migration"
    ctx.report(
        "add-column-volatile-default",
        f'adding "{name}" to "{cmd.relation}" rewrites the table: {reason}',
        relation=cmd.relation,
        work="rewrite",
        alternative=alternative,
    )


def _required(cmd: Command, name: str, col: str, type_text: str) -> None:
    ctx = cmd.ctx
    stats = ctx.schema.stats(cmd.relation)
    severity = None
    message = f'"{cmd.relation}.{name}" is NOT NULL with no default'
    if stats is not None and stats.rows > 0:
        severity = Severity.ERROR
        message += f": it fails, the table has {stats.rows:,} rows"
    elif stats is not None:
        severity = Severity.NOTE
        message += f' ("{cmd.relation}" is empty now)'
    ctx.report(
        "add-required-column",
        message,
        relation=cmd.relation,
        severity=severity,
        alternative=cmd.alter(f"ADD COLUMN {col} {type_text} NOT NULL DEFAULT <value>"),
    )


@handles("AT_AlterColumnType")
def alter_type(cmd: Command) -> None:
    """Type changes: binary-coercible ones pass, others rewrite."""
    ctx = cmd.ctx
    name = cmd.node.get("name", "")
    definition = cmd.definition
    new_type = column_type(definition.get("typeName"))
    if new_type is None:
        return
    old_type = ctx.schema.column_type(cmd.relation, name)
    using = definition.get("raw_default") or {}
    live = ctx.schema.live
    verdict = judge(
        old_type,
        new_type,
        pg_version=ctx.pg,
        timezone=live.timezone if live is not None else None,
        using=bool(using) and "ColumnRef" not in using,
    )
    state = ctx.schema.ensure(cmd.relation)
    if state is not None:
        state.columns[name] = new_type
    if cmd.new or verdict.rewrite is False:
        return
    ctx.lock(cmd.relation, Lock.ACCESS_EXCLUSIVE, rewrite=True)
    col = ident(name)
    temp = ident(f"{name}_new")
    type_text = _type_text(ctx, definition)
    alternative = join_sql(
        [
            f"ALTER TABLE {cmd.table} ADD COLUMN {temp} {type_text}",
            "-- keep it in sync with a trigger, backfill in batches outside the "
            f"migration:\n-- UPDATE {cmd.table} SET {temp} = {col} WHERE <key range>",
            f"ALTER TABLE {cmd.table} RENAME COLUMN {col} TO {ident(name + '_old')}",
            f"ALTER TABLE {cmd.table} RENAME COLUMN {temp} TO {col}",
        ]
    )
    ctx.report(
        "change-column-type",
        f'"{cmd.relation}.{name}" to {new_type}: '
        + (
            "the table is rewritten"
            if verdict.rewrite
            else "the table may be rewritten"
        )
        + f" ({verdict.reason})",
        relation=cmd.relation,
        work="rewrite",
        alternative=alternative,
    )


@handles("AT_SetNotNull")
def set_not_null(cmd: Command) -> None:
    """SET NOT NULL scans unless a validated CHECK proves it (PostgreSQL 12+)."""
    ctx = cmd.ctx
    name = cmd.node.get("name", "")
    state = ctx.schema.ensure(cmd.relation)
    if state is not None:
        state.not_null.add(name)
    if cmd.new:
        return
    if ctx.pg >= 12 and ctx.schema.has_valid_not_null_check(cmd.relation, name):
        return
    ctx.lock(cmd.relation, Lock.ACCESS_EXCLUSIVE, scan=True)
    col = ident(name)
    check = ident(f"{cmd.short_name}_{name}_not_null")
    steps = [
        f"ALTER TABLE {cmd.table} ADD CONSTRAINT {check} CHECK ({col} IS NOT NULL) "
        "NOT VALID",
        f"ALTER TABLE {cmd.table} VALIDATE CONSTRAINT {check}",
    ]
    if ctx.pg >= 12:
        steps += [
            f"ALTER TABLE {cmd.table} ALTER COLUMN {col} SET NOT NULL",
            f"ALTER TABLE {cmd.table} DROP CONSTRAINT {check}",
        ]
    ctx.report(
        "set-not-null",
        f'SET NOT NULL on "{cmd.relation}.{name}" scans the table under an ACCESS '
        "EXCLUSIVE lock",
        relation=cmd.relation,
        work="scan",
        alternative=join_sql(steps),
    )


@handles("AT_DropNotNull")
def drop_not_null(cmd: Command) -> None:
    """DROP NOT NULL: a compatibility note on existing tables."""
    name = cmd.node.get("name", "")
    state = cmd.ctx.schema.ensure(cmd.relation)
    if state is not None:
        state.not_null.discard(name)
    if not cmd.new:
        cmd.ctx.report(
            "drop-not-null",
            f'"{cmd.relation}.{name}" may now hold NULL',
            relation=cmd.relation,
        )


@handles("AT_DropColumn")
def drop_column(cmd: Command) -> None:
    """DROP COLUMN loses data (a note when a down undoes its own up)."""
    ctx = cmd.ctx
    name = cmd.node.get("name", "")
    state = ctx.schema.ensure(cmd.relation)
    if state is not None:
        state.columns.pop(name, None)
    key = f"{ctx.schema.key(cmd.relation)}:{name}"
    if cmd.new or key in ctx.schema.created:
        return
    if (
        key in ctx.schema.created_by_up
        or ctx.schema.key(cmd.relation) in ctx.schema.created_by_up
    ):
        ctx.report(
            "drop-column",
            f'drops "{cmd.relation}.{name}", which the up adds: the values written '
            "since are lost",
            relation=cmd.relation,
            severity=Severity.NOTE,
        )
        return
    ctx.report(
        "drop-column",
        f'drops "{cmd.relation}.{name}" and its data',
        relation=cmd.relation,
    )
