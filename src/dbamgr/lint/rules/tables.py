"""Tables as a whole: creation, drops, renames, truncation, storage changes."""

from __future__ import annotations

from dbamgr.lint.context import Context, ident
from dbamgr.lint.model import (
    COMPAT,
    DATA_LOSS,
    LOCK,
    REWRITE,
    SCAN,
    Lock,
    Rule,
    Severity,
)
from dbamgr.lint.nodes import (
    Node,
    column_type,
    constraints,
    contype,
    not_null_check_column,
    object_names,
    range_name,
    strings,
)
from dbamgr.lint.rules._registry import analyzer
from dbamgr.lint.rules.alter import Command, handles
from dbamgr.lint.rules.types import advise, is_key_column

RULES = [
    Rule(
        "drop-table",
        Severity.WARNING,
        DATA_LOSS,
        "DROP TABLE",
        "the table's rows are gone, and code still running the old version fails "
        "on every query that names it",
        "deploy code that no longer uses it first; rename it aside and drop it in a "
        "later migration, once nothing reads it",
    ),
    Rule(
        "drop-schema",
        Severity.ERROR,
        DATA_LOSS,
        "DROP SCHEMA",
        "with CASCADE it drops every table in the schema; without, it fails while "
        "the schema holds anything",
    ),
    Rule(
        "drop-database",
        Severity.ERROR,
        DATA_LOSS,
        "DROP DATABASE",
        "the whole database is gone; a migration should never do this",
    ),
    Rule(
        "drop-cascade",
        Severity.ERROR,
        DATA_LOSS,
        "DROP … CASCADE of a type, domain, extension or function",
        "CASCADE also drops what depends on the object: columns of that type, "
        "defaults, triggers, indexes, with their data",
        "drop or change the dependent objects explicitly first, then drop without "
        "CASCADE",
    ),
    Rule(
        "drop-object",
        Severity.WARNING,
        COMPAT,
        "DROP of a view, function, type, sequence or trigger",
        "code still running the old version may use it and fail",
        "deploy code that no longer uses it first",
    ),
    Rule(
        "truncate",
        Severity.ERROR,
        DATA_LOSS,
        "TRUNCATE",
        "every row is deleted, under an ACCESS EXCLUSIVE lock; CASCADE also "
        "empties every table with a foreign key to it",
    ),
    Rule(
        "rename-table",
        Severity.WARNING,
        COMPAT,
        "RENAME of a table or view",
        "code still running the old version fails on every query that uses the old "
        "name",
        "create a view with the old name over the renamed table until the old code "
        "is gone",
    ),
    Rule(
        "rename-column",
        Severity.WARNING,
        COMPAT,
        "RENAME COLUMN",
        "code still running the old version fails on every query that names the column",
        "add the new column, write to both, backfill, switch the reads, then drop "
        "the old one",
    ),
    Rule(
        "set-schema",
        Severity.WARNING,
        COMPAT,
        "SET SCHEMA",
        "code that names the object with its old schema, or finds it through "
        "search_path, stops finding it",
    ),
    Rule(
        "set-logged",
        Severity.WARNING,
        REWRITE,
        "SET LOGGED or SET UNLOGGED",
        "the table is rewritten (and, for LOGGED, written to the WAL) under an "
        "ACCESS EXCLUSIVE lock",
    ),
    Rule(
        "set-tablespace",
        Severity.WARNING,
        REWRITE,
        "SET TABLESPACE",
        "every file of the relation is copied under an ACCESS EXCLUSIVE lock",
    ),
    Rule(
        "set-access-method",
        Severity.WARNING,
        REWRITE,
        "SET ACCESS METHOD",
        "the table is rewritten under an ACCESS EXCLUSIVE lock",
    ),
    Rule(
        "detach-partition-non-concurrently",
        Severity.WARNING,
        LOCK,
        "DETACH PARTITION without CONCURRENTLY",
        "the parent table is locked ACCESS EXCLUSIVE, blocking reads and writes on "
        "every partition",
        "DETACH PARTITION … CONCURRENTLY (PostgreSQL 14+), outside a transaction",
    ),
    Rule(
        "attach-partition",
        Severity.WARNING,
        SCAN,
        "ATTACH PARTITION of an existing table",
        "the partition is scanned under lock to prove its rows fit the bound, "
        "unless a validated CHECK constraint already proves it",
        "add a CHECK matching the bound NOT VALID, VALIDATE it, then ATTACH (no "
        "scan), then drop the CHECK",
    ),
]

_DROP_KINDS = {
    "OBJECT_VIEW": "view",
    "OBJECT_MATVIEW": "materialized view",
    "OBJECT_FUNCTION": "function",
    "OBJECT_PROCEDURE": "procedure",
    "OBJECT_TYPE": "type",
    "OBJECT_DOMAIN": "domain",
    "OBJECT_SEQUENCE": "sequence",
    "OBJECT_TRIGGER": "trigger",
    "OBJECT_EXTENSION": "extension",
}
_CASCADE_DANGER = frozenset(
    {"OBJECT_TYPE", "OBJECT_DOMAIN", "OBJECT_EXTENSION", "OBJECT_FUNCTION"}
)


@analyzer("CreateStmt")
def create_table(ctx: Context, stmt: Node) -> None:
    """New tables: type advice, locks on referenced tables; remember the table."""
    name = range_name(stmt.get("relation"))
    elements = stmt.get("tableElts") or []
    keys: set[str] = set()
    checks: list[Node] = []
    for element in elements:
        constraint = element.get("Constraint")
        if constraint is None:
            continue
        kind = contype(constraint)
        if kind in ("PRIMARY", "UNIQUE"):
            keys.update(strings(constraint.get("keys")))
        elif kind == "FOREIGN":
            keys.update(strings(constraint.get("fk_attrs")))
            ctx.lock(range_name(constraint.get("pktable")), Lock.SHARE_ROW_EXCLUSIVE)
        elif kind == "CHECK":
            checks.append(constraint)
    for parent in stmt.get("inhRelations") or []:
        if stmt.get("partbound"):
            ctx.lock(range_name(parent), Lock.ACCESS_EXCLUSIVE)
    state = ctx.schema.ensure(name)
    for element in elements:
        column = element.get("ColumnDef")
        if column is None:
            continue
        advise(ctx, name, column, key=is_key_column(column, keys))
        for constraint in constraints(column):
            kind = contype(constraint)
            if kind == "FOREIGN":
                ctx.lock(
                    range_name(constraint.get("pktable")), Lock.SHARE_ROW_EXCLUSIVE
                )
            elif kind == "CHECK":
                checks.append(constraint)
            elif kind in ("NOTNULL", "PRIMARY") and state is not None:
                state.not_null.add(column.get("colname", ""))
        found = column_type(column.get("typeName"))
        if state is not None and found is not None:
            state.columns[column.get("colname", "")] = found
    if state is not None:
        for constraint in checks:
            column_name = not_null_check_column(constraint.get("raw_expr"))
            if column_name is not None:
                label = constraint.get("conname") or f"{name}_{column_name}_check"
                state.checks[label] = (column_name, True)
    ctx.schema.mark_created(name)
    ctx.lock(name, Lock.ACCESS_EXCLUSIVE)


@analyzer("CreateTableAsStmt", "ViewStmt", "CreateSeqStmt", "CreateSchemaStmt")
def create_relation(ctx: Context, stmt: Node) -> None:
    """Relations made by CREATE … AS, views, sequences and schemas count as new."""
    if stmt.get("schemaname"):
        ctx.schema.mark_created(str(stmt["schemaname"]))
        return
    into = stmt.get("into") or {}
    relation = into.get("rel") or stmt.get("view") or stmt.get("sequence")
    if relation:
        ctx.schema.mark_created(range_name(relation))


def _dropped_by_own_up(ctx: Context, name: str) -> bool:
    return ctx.schema.key(name) in ctx.schema.created_by_up


@analyzer("DropStmt")
def drop(ctx: Context, stmt: Node) -> None:
    """Drops: tables and schemas lose data, other objects break old code."""
    kind = stmt.get("removeType", "")
    names = object_names(stmt.get("objects"))
    cascade = stmt.get("behavior") == "DROP_CASCADE"
    if kind == "OBJECT_TABLE":
        for name in names:
            ctx.lock(name, Lock.ACCESS_EXCLUSIVE)
            if cascade and ctx.schema.live is not None and not ctx.is_new(name):
                for dependent in ctx.schema.live.dependents(name):
                    ctx.lock(dependent, Lock.ACCESS_EXCLUSIVE)
            if ctx.is_new(name):
                pass
            elif _dropped_by_own_up(ctx, name):
                ctx.report(
                    "drop-table",
                    f'drops "{name}", which the up creates: the rows written since '
                    "are lost",
                    relation=name,
                    severity=Severity.NOTE,
                )
            else:
                ctx.report("drop-table", f'drops "{name}" and its rows', relation=name)
            ctx.schema.forget(name)
    elif kind == "OBJECT_SCHEMA":
        for name in names:
            if not ctx.is_new(name):
                how = "with CASCADE: every object in it goes" if cascade else ""
                ctx.report(
                    "drop-schema",
                    f'drops schema "{name}"' + (f" {how}" if how else ""),
                    severity=None if cascade else Severity.WARNING,
                )
    elif kind in _DROP_KINDS:
        for name in names:
            if ctx.is_new(name) or _dropped_by_own_up(ctx, name):
                continue
            if cascade and kind in _CASCADE_DANGER:
                ctx.report(
                    "drop-cascade",
                    f'DROP {_DROP_KINDS[kind].upper()} "{name}" CASCADE also drops '
                    "every column, default and index that uses it",
                    alternative=f"DROP {_DROP_KINDS[kind].upper()} {ident(name)}",
                )
            else:
                ctx.report("drop-object", f'drops {_DROP_KINDS[kind]} "{name}"')


@analyzer("DropOwnedStmt")
def drop_owned(ctx: Context, stmt: Node) -> None:
    """DROP OWNED drops every object of the roles, tables included."""
    roles = ", ".join(
        str(r.get("RoleSpec", {}).get("rolename", "")) for r in stmt.get("roles") or []
    )
    ctx.report(
        "drop-cascade",
        f"DROP OWNED BY {roles} drops every table and object those roles own",
        alternative=f"REASSIGN OWNED BY {roles} TO <new owner>;",
    )


@analyzer("AlterTableMoveAllStmt")
def move_all(ctx: Context, stmt: Node) -> None:
    """ALTER TABLE ALL IN TABLESPACE copies every table in it."""
    ctx.report(
        "set-tablespace",
        f'moves every relation of tablespace "{stmt.get("orig_tablespacename", "")}"'
        f' to "{stmt.get("new_tablespacename", "")}", each copied under an ACCESS '
        "EXCLUSIVE lock",
    )


@analyzer("DropdbStmt")
def drop_database(ctx: Context, stmt: Node) -> None:
    """DROP DATABASE in a migration."""
    ctx.report("drop-database", f'drops database "{stmt.get("dbname", "")}"')


@analyzer("TruncateStmt")
def truncate(ctx: Context, stmt: Node) -> None:
    """TRUNCATE empties tables; CASCADE reaches tables that refer to them."""
    cascade = stmt.get("behavior") == "DROP_CASCADE"
    for relation in stmt.get("relations") or []:
        name = range_name(relation)
        ctx.lock(name, Lock.ACCESS_EXCLUSIVE)
        if ctx.is_new(name):
            continue
        ctx.report(
            "truncate",
            f'empties "{name}"'
            + (
                " and every table with a foreign key to it (CASCADE)" if cascade else ""
            ),
            relation=name,
        )


@analyzer("RenameStmt")
def rename(ctx: Context, stmt: Node) -> None:
    """Renames of tables, views and columns break code that uses the old name."""
    kind = stmt.get("renameType", "")
    relation = range_name(stmt.get("relation"))
    new_name = stmt.get("newname", "")
    if kind in ("OBJECT_TABLE", "OBJECT_VIEW", "OBJECT_MATVIEW") and relation:
        ctx.lock(relation, Lock.ACCESS_EXCLUSIVE)
        if not ctx.is_new(relation):
            alternative = None
            if kind == "OBJECT_TABLE":
                schema = relation.rpartition(".")[0]
                qualified = f"{schema}.{new_name}" if schema else new_name
                alternative = (
                    f"ALTER TABLE {ident(relation)} RENAME TO {ident(new_name)};\n"
                    f"CREATE VIEW {ident(relation)} AS SELECT * FROM "
                    f"{ident(qualified)};"
                )
            ctx.report(
                "rename-table",
                f'renames "{relation}" to "{new_name}"',
                relation=relation,
                alternative=alternative,
            )
        ctx.schema.rename(relation, new_name)
    elif kind == "OBJECT_COLUMN" and relation:
        ctx.lock(relation, Lock.ACCESS_EXCLUSIVE)
        old = stmt.get("subname", "")
        state = ctx.schema.ensure(relation)
        if state is not None and old in state.columns:
            state.columns[new_name] = state.columns.pop(old)
        key = f"{ctx.schema.key(relation)}:{old}"
        if not ctx.is_new(relation) and key not in ctx.schema.created:
            found = ctx.schema.column_type(relation, new_name)
            alternative = None
            if found is not None:
                table, col, new = ident(relation), ident(old), ident(new_name)
                alternative = (
                    f"ALTER TABLE {table} ADD COLUMN {new} {found};\n"
                    "-- write both columns (a trigger, or the application), then "
                    "backfill in batches:\n"
                    f"-- UPDATE {table} SET {new} = {col} WHERE {new} IS NULL AND "
                    "<key range>;\n"
                    "-- once no code reads the old name, in a later migration:\n"
                    f"ALTER TABLE {table} DROP COLUMN {col};"
                )
            ctx.report(
                "rename-column",
                f'renames "{relation}.{old}" to "{new_name}"',
                relation=relation,
                alternative=alternative,
            )


@analyzer("AlterObjectSchemaStmt")
def set_schema(ctx: Context, stmt: Node) -> None:
    """SET SCHEMA moves an object away from the name code uses."""
    relation = range_name(stmt.get("relation"))
    names = [relation] if relation else object_names([stmt.get("object") or {}])
    for name in names:
        if relation:
            ctx.lock(relation, Lock.ACCESS_EXCLUSIVE)
        if name and not ctx.is_new(name):
            ctx.report(
                "set-schema",
                f'moves "{name}" to schema "{stmt.get("newschema", "")}"',
                relation=relation or None,
            )


@handles("AT_SetLogged", "AT_SetUnLogged")
def set_logged(cmd: Command) -> None:
    """SET LOGGED / UNLOGGED rewrite the table."""
    cmd.ctx.lock(cmd.relation, Lock.ACCESS_EXCLUSIVE, rewrite=True)
    if cmd.new:
        return
    what = "LOGGED" if cmd.subtype == "AT_SetLogged" else "UNLOGGED"
    cmd.ctx.report(
        "set-logged",
        f'SET {what} rewrites "{cmd.relation}"',
        relation=cmd.relation,
        work="rewrite",
    )


@handles("AT_SetTableSpace")
def set_tablespace(cmd: Command) -> None:
    """SET TABLESPACE copies the relation's files."""
    cmd.ctx.lock(cmd.relation, Lock.ACCESS_EXCLUSIVE, rewrite=True)
    if cmd.new:
        return
    cmd.ctx.report(
        "set-tablespace",
        f'moving "{cmd.relation}" to tablespace "{cmd.node.get("name", "")}" copies '
        "it under an ACCESS EXCLUSIVE lock",
        relation=cmd.relation,
        work="rewrite",
    )


@handles("AT_SetAccessMethod")
def set_access_method(cmd: Command) -> None:
    """SET ACCESS METHOD rewrites the table."""
    cmd.ctx.lock(cmd.relation, Lock.ACCESS_EXCLUSIVE, rewrite=True)
    if not cmd.new:
        cmd.ctx.report(
            "set-access-method",
            f'SET ACCESS METHOD rewrites "{cmd.relation}"',
            relation=cmd.relation,
            work="rewrite",
        )


@handles("AT_DetachPartition")
def detach_partition(cmd: Command) -> None:
    """DETACH PARTITION locks the whole partitioned table unless CONCURRENTLY."""
    partition_cmd = cmd.definition
    partition = range_name(partition_cmd.get("name"))
    cmd.ctx.lock(partition, Lock.ACCESS_EXCLUSIVE)
    if partition_cmd.get("concurrent") or cmd.new:
        return
    alternative = None
    if cmd.ctx.pg >= 14:
        alternative = (
            "-- in a migration whose first line is -- dbamgr:no-transaction\n"
            + cmd.alter(f"DETACH PARTITION {ident(partition)} CONCURRENTLY")
        )
    cmd.ctx.report(
        "detach-partition-non-concurrently",
        f'detaching "{partition}" locks "{cmd.relation}" ACCESS EXCLUSIVE',
        relation=cmd.relation,
        alternative=alternative,
    )


@handles("AT_AttachPartition")
def attach_partition(cmd: Command) -> None:
    """ATTACH PARTITION scans the partition unless it was created here."""
    partition = range_name(cmd.definition.get("name"))
    if cmd.statement.get("objtype") == "OBJECT_INDEX":
        return
    cmd.ctx.lock(partition, Lock.ACCESS_EXCLUSIVE, scan=True)
    if cmd.ctx.is_new(partition):
        return
    cmd.ctx.report(
        "attach-partition",
        f'attaching "{partition}" to "{cmd.relation}" scans it to check the bound',
        relation=partition,
        work="scan",
    )
