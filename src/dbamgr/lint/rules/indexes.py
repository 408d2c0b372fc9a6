"""Indexes and whole-relation maintenance: builds, drops, reindex, refresh, vacuum."""

from __future__ import annotations

from dbamgr.lint.context import Context, ident
from dbamgr.lint.model import DESIGN, INDEX_BUILD, LOCK, REWRITE, Lock, Rule, Severity
from dbamgr.lint.nodes import Node, body, object_names, range_name
from dbamgr.lint.rules._registry import analyzer
from dbamgr.lint.text import insert_after_keyword

RULES = [
    Rule(
        "create-index-non-concurrently",
        Severity.WARNING,
        INDEX_BUILD,
        "CREATE INDEX without CONCURRENTLY on an existing table",
        "the build holds a SHARE lock: every INSERT, UPDATE and DELETE on the table "
        "waits until it ends",
        "CREATE INDEX CONCURRENTLY, in a migration that runs outside a transaction",
    ),
    Rule(
        "drop-index-non-concurrently",
        Severity.WARNING,
        LOCK,
        "DROP INDEX without CONCURRENTLY",
        "it takes an ACCESS EXCLUSIVE lock on the table: queued behind a long "
        "query, it blocks every read and write",
        "DROP INDEX CONCURRENTLY, in a migration that runs outside a transaction",
    ),
    Rule(
        "reindex-non-concurrently",
        Severity.WARNING,
        INDEX_BUILD,
        "REINDEX without CONCURRENTLY",
        "it blocks writes to the table and reads through the index while it rebuilds",
        "REINDEX … CONCURRENTLY (PostgreSQL 12+), outside a transaction",
    ),
    Rule(
        "refresh-matview-non-concurrently",
        Severity.WARNING,
        REWRITE,
        "REFRESH MATERIALIZED VIEW without CONCURRENTLY",
        "the view is locked ACCESS EXCLUSIVE for the whole refresh: every read of "
        "it waits",
        "REFRESH MATERIALIZED VIEW CONCURRENTLY (the view needs a unique index)",
    ),
    Rule(
        "vacuum-full",
        Severity.WARNING,
        REWRITE,
        "VACUUM FULL",
        "the table is rewritten under an ACCESS EXCLUSIVE lock",
        "plain VACUUM, or pg_repack to compact without the long lock",
    ),
    Rule(
        "cluster",
        Severity.WARNING,
        REWRITE,
        "CLUSTER",
        "the table is rewritten in index order under an ACCESS EXCLUSIVE lock",
        "pg_repack --order-by, which holds the lock only briefly",
    ),
    Rule(
        "index-too-many-columns",
        Severity.NOTE,
        DESIGN,
        "non-unique index on more than three columns",
        "past three columns a B-tree index rarely helps more, and it costs every "
        "write and its size",
        "index the leading, most selective columns",
    ),
]

NO_TRANSACTION = "-- in a migration whose first line is -- dbamgr:no-transaction\n"


@analyzer("IndexStmt")
def create_index(ctx: Context, stmt: Node) -> None:
    """CREATE INDEX: SHARE lock for the build unless CONCURRENTLY."""
    table = range_name(stmt.get("relation"))
    name = stmt.get("idxname")
    concurrent = stmt.get("concurrent", False)
    ctx.lock(table, Lock.SHARE_UPDATE_EXCLUSIVE if concurrent else Lock.SHARE)
    params = stmt.get("indexParams") or []
    if len(params) > 3 and not stmt.get("unique"):
        ctx.report(
            "index-too-many-columns",
            f'index {f"{name} " if name else ""}on "{table}" has {len(params)} columns',
        )
    if name:
        schema = table.rpartition(".")[0]
        qualified = f"{schema}.{name}" if schema else name
        ctx.schema.indexes[ctx.schema.key(qualified)] = table
        ctx.schema.index_columns[ctx.schema.key(qualified)] = [
            str(body(p).get("name")) for p in params if body(p).get("name")
        ]
        if ctx.is_new(table):
            ctx.schema.mark_created(qualified)
    if concurrent or ctx.is_new(table):
        return
    alternative = insert_after_keyword(ctx.text, "INDEX", "CONCURRENTLY")
    ctx.report(
        "create-index-non-concurrently",
        f'building an index on "{table}" blocks its writes until it ends',
        relation=table,
        work="index",
        alternative=NO_TRANSACTION + alternative + ";" if alternative else None,
    )


@analyzer("DropStmt")
def drop_index(ctx: Context, stmt: Node) -> None:
    """DROP INDEX: ACCESS EXCLUSIVE on the table unless CONCURRENTLY."""
    if stmt.get("removeType") != "OBJECT_INDEX":
        return
    concurrent = stmt.get("concurrent", False)
    for name in object_names(stmt.get("objects")):
        table = ctx.schema.index_table(name)
        level = Lock.SHARE_UPDATE_EXCLUSIVE if concurrent else Lock.ACCESS_EXCLUSIVE
        ctx.lock(table if table is not None else name, level)
        if concurrent or ctx.is_new(name) or (table is not None and ctx.is_new(table)):
            continue
        alternative = insert_after_keyword(ctx.text, "INDEX", "CONCURRENTLY")
        on = f' on "{table}"' if table else ""
        ctx.report(
            "drop-index-non-concurrently",
            f'dropping index "{name}" takes an ACCESS EXCLUSIVE lock{on}',
            relation=table,
            alternative=NO_TRANSACTION + alternative + ";" if alternative else None,
        )


@analyzer("ReindexStmt")
def reindex(ctx: Context, stmt: Node) -> None:
    """REINDEX blocks writes (and reads through the index) unless CONCURRENTLY."""
    options = {body(p).get("defname") for p in stmt.get("params") or []}
    concurrent = "concurrently" in options
    kind = str(stmt.get("kind", "")).removeprefix("REINDEX_OBJECT_")
    name = range_name(stmt.get("relation")) or stmt.get("name", "")
    table = name if kind == "TABLE" else None
    if kind == "INDEX":
        table = ctx.schema.index_table(name)
        level = Lock.SHARE_UPDATE_EXCLUSIVE if concurrent else Lock.ACCESS_EXCLUSIVE
        ctx.lock(name, level, rewrite=not concurrent)
    if table:
        ctx.lock(table, Lock.SHARE_UPDATE_EXCLUSIVE if concurrent else Lock.SHARE)
    if concurrent or (name and ctx.is_new(name)):
        return
    alternative = None
    if ctx.pg >= 12 and kind in ("INDEX", "TABLE", "SCHEMA", "DATABASE"):
        edited = insert_after_keyword(ctx.text, kind, "CONCURRENTLY")
        alternative = NO_TRANSACTION + edited + ";" if edited else None
    ctx.report(
        "reindex-non-concurrently",
        f"REINDEX {kind} {name} blocks writes while it rebuilds".replace("  ", " "),
        relation=table,
        work="index",
        alternative=alternative,
    )


@analyzer("RefreshMatViewStmt")
def refresh(ctx: Context, stmt: Node) -> None:
    """REFRESH MATERIALIZED VIEW blocks reads unless CONCURRENTLY."""
    name = range_name(stmt.get("relation"))
    if stmt.get("concurrent"):
        ctx.lock(name, Lock.EXCLUSIVE)
        return
    ctx.lock(name, Lock.ACCESS_EXCLUSIVE, rewrite=True)
    if ctx.is_new(name):
        return
    ctx.report(
        "refresh-matview-non-concurrently",
        f'refreshing "{name}" blocks every read of it until it ends',
        relation=name,
        work="rewrite",
        alternative=f"REFRESH MATERIALIZED VIEW CONCURRENTLY {ident(name)};",
    )


@analyzer("VacuumStmt")
def vacuum(ctx: Context, stmt: Node) -> None:
    """VACUUM FULL rewrites; plain VACUUM takes a SHARE UPDATE EXCLUSIVE lock."""
    if not stmt.get("is_vacuumcmd"):
        return
    options = {body(o).get("defname") for o in stmt.get("options") or []}
    full = "full" in options
    for item in stmt.get("rels") or []:
        name = range_name(body(item).get("relation"))
        ctx.lock(
            name,
            Lock.ACCESS_EXCLUSIVE if full else Lock.SHARE_UPDATE_EXCLUSIVE,
            rewrite=full,
        )
        if full and not ctx.is_new(name):
            ctx.report(
                "vacuum-full",
                f'VACUUM FULL rewrites "{name}"',
                relation=name,
                work="rewrite",
                alternative=f"VACUUM {ident(name)};",
            )
    if full and not stmt.get("rels"):
        ctx.report("vacuum-full", "VACUUM FULL rewrites every table of the database")


@analyzer("ClusterStmt")
def cluster(ctx: Context, stmt: Node) -> None:
    """CLUSTER rewrites the table."""
    name = range_name(stmt.get("relation"))
    if name:
        ctx.lock(name, Lock.ACCESS_EXCLUSIVE, rewrite=True)
        if ctx.is_new(name):
            return
    ctx.report(
        "cluster",
        f'CLUSTER rewrites "{name}"'
        if name
        else "CLUSTER rewrites every clustered table",
        relation=name or None,
        work="rewrite",
    )
