"""Which object a catalog row belongs to, in SQL shared by the ways a
:class:`~dbamgr.schema.incremental.SnapshotCache` learns what changed.

A snapshot reads relations, functions, types, schemas and extensions whole; a
change to a constraint, trigger, policy or default is a change to the relation
or type that owns it.
"""

from __future__ import annotations

# The catalogs whose rows a snapshot maps to the objects it reads, and that of
# rules (a view's, dropped with it; a command on a rule locks its relation). A
# change to a row of another catalog (a collation, an operator, a foreign
# server, a role) may alter how many objects print: the cache then reads
# everything.
MAPPED_CATALOGS = frozenset(
    {
        "pg_rewrite",
        "pg_class",
        "pg_proc",
        "pg_type",
        "pg_namespace",
        "pg_extension",
        "pg_default_acl",
        "pg_constraint",
        "pg_trigger",
        "pg_policy",
        "pg_attrdef",
    }
)

NAMESPACES = """
ns AS (
    SELECT n.oid FROM pg_namespace n
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
)"""

# The owner of each (catalog, oid) pair that a FROM clause names ``o``: a
# function, schema, extension or type is its own; a constraint, trigger, policy
# or default belongs to a relation or a type. An object that is gone comes back
# as class "gone:<catalog>": the cache knows the owners of what it read.
OWNERS = """
SELECT CASE
         WHEN coalesce(pr.oid, sp.oid, ex.oid, t.oid, k.oid, tg.oid, po.oid,
                       ad.oid) IS NULL THEN 'gone:' || o.catalog
         WHEN o.catalog = 'pg_proc' THEN 'proc'
         WHEN o.catalog = 'pg_namespace' THEN 'schema'
         WHEN o.catalog = 'pg_extension' THEN 'ext'
         WHEN o.catalog = 'pg_type' THEN
              CASE WHEN t.typrelid <> 0 AND tc.relkind <> 'c' THEN 'rel'
                   ELSE 'type' END
         WHEN k.contypid <> 0 THEN 'type'
         ELSE 'rel'
       END,
       CASE
         WHEN o.catalog = 'pg_type' AND t.typrelid <> 0 AND tc.relkind <> 'c'
              THEN t.typrelid
         ELSE coalesce(NULLIF(k.conrelid, 0), NULLIF(k.contypid, 0), tg.tgrelid,
                       po.polrelid, ad.adrelid, o.objid)
       END
FROM {source} AS o(catalog, objid)
LEFT JOIN pg_proc pr ON o.catalog = 'pg_proc' AND pr.oid = o.objid
LEFT JOIN pg_namespace sp ON o.catalog = 'pg_namespace' AND sp.oid = o.objid
LEFT JOIN pg_extension ex ON o.catalog = 'pg_extension' AND ex.oid = o.objid
LEFT JOIN pg_type t ON o.catalog = 'pg_type' AND t.oid = o.objid
LEFT JOIN pg_class tc ON tc.oid = t.typrelid
LEFT JOIN pg_constraint k ON o.catalog = 'pg_constraint' AND k.oid = o.objid
LEFT JOIN pg_trigger tg ON o.catalog = 'pg_trigger' AND tg.oid = o.objid
LEFT JOIN pg_policy po ON o.catalog = 'pg_policy' AND po.oid = o.objid
LEFT JOIN pg_attrdef ad ON o.catalog = 'pg_attrdef' AND ad.oid = o.objid
WHERE o.catalog IN ('pg_proc', 'pg_namespace', 'pg_extension', 'pg_type',
                    'pg_constraint', 'pg_trigger', 'pg_policy', 'pg_attrdef')"""
