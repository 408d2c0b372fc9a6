"""Changes to rows inside a migration: deletes and backfills."""

from __future__ import annotations

from dbamgr.lint.context import Context, ident
from dbamgr.lint.model import BACKFILL, DATA_LOSS, Lock, Rule, Severity
from dbamgr.lint.nodes import Node, body, range_name
from dbamgr.lint.rules._registry import analyzer
from dbamgr.lint.text import where_span

RULES = [
    Rule(
        "delete-without-where",
        Severity.ERROR,
        DATA_LOSS,
        "DELETE without WHERE",
        "every row of the table is deleted, in one long transaction that holds "
        "row locks on all of them",
        "if the table must be emptied, say so with TRUNCATE; otherwise add the "
        "WHERE that was meant",
    ),
    Rule(
        "delete-rows",
        Severity.WARNING,
        DATA_LOSS,
        "DELETE in a migration",
        "the rows are gone once it commits, and a large delete holds its row locks "
        "and bloats the table until VACUUM",
        "delete in batches outside the migration, after keeping a copy",
    ),
    Rule(
        "backfill-in-migration",
        Severity.WARNING,
        BACKFILL,
        "UPDATE in a migration",
        "a backfill in the migration's transaction locks every row it touches until "
        "the end, and keeps any lock the migration took before it",
        "backfill in batches from a script or job outside the migration, each "
        "batch its own short transaction",
    ),
]

_BATCH = 10000


def _batched(ctx: Context, table: str, placeholder: str) -> str:
    """The statement, limited to one batch of rows, to repeat outside the migration."""
    text = ctx.text.rstrip().rstrip(";")
    start, end, found = where_span(text)
    condition = text[start:end].strip() if found else placeholder
    batch = (
        f"ctid = ANY (ARRAY(SELECT ctid FROM {ident(table)} WHERE {condition} "
        f"LIMIT {_BATCH}))"
    )
    if found:
        edited = f"{text[:start]} ({condition}) AND {batch} {text[end:]}"
    else:
        edited = f"{text[:start].rstrip()} WHERE {batch} {text[end:]}"
    return (
        "-- outside the migration, repeated until it changes no row:\n"
        + edited.rstrip()
        + ";"
    )


@analyzer("DeleteStmt")
def delete(ctx: Context, stmt: Node) -> None:
    """DELETE: data loss, the worst when it has no WHERE."""
    table = range_name(stmt.get("relation"))
    ctx.lock(table, Lock.ROW_EXCLUSIVE)
    if ctx.is_new(table):
        return
    if stmt.get("whereClause") is None and not stmt.get("usingClause"):
        ctx.report(
            "delete-without-where",
            f'deletes every row of "{table}"',
            relation=table,
            work="rows",
            alternative=f"TRUNCATE {ident(table)};",
        )
        return
    ctx.report(
        "delete-rows",
        f'deletes rows of "{table}"',
        relation=table,
        alternative=_batched(ctx, table, "<the rows to delete>"),
    )


@analyzer("UpdateStmt")
def update(ctx: Context, stmt: Node) -> None:
    """UPDATE: a backfill inside the migration's transaction."""
    table = range_name(stmt.get("relation"))
    ctx.lock(table, Lock.ROW_EXCLUSIVE)
    if ctx.is_new(table):
        return
    whole = stmt.get("whereClause") is None and not stmt.get("fromClause")
    ctx.report(
        "backfill-in-migration",
        f'updates every row of "{table}"' if whole else f'updates rows of "{table}"',
        relation=table,
        work="rows" if whole else None,
        alternative=_batched(ctx, table, "<not yet updated>"),
    )


@analyzer("MergeStmt")
def merge(ctx: Context, stmt: Node) -> None:
    """MERGE: a backfill, and a delete when one of its actions deletes."""
    table = range_name(stmt.get("relation"))
    ctx.lock(table, Lock.ROW_EXCLUSIVE)
    if ctx.is_new(table):
        return
    actions = {
        body(clause).get("commandType") for clause in stmt.get("mergeWhenClauses") or []
    }
    if "CMD_DELETE" in actions:
        ctx.report("delete-rows", f'MERGE deletes rows of "{table}"', relation=table)
    if actions & {"CMD_UPDATE", "CMD_INSERT"}:
        ctx.report(
            "backfill-in-migration", f'MERGE changes rows of "{table}"', relation=table
        )
