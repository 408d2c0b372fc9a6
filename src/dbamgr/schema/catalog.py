"""The catalog query behind a schema snapshot.

One statement reads every object kind and returns a single JSON document, so a
snapshot costs one round trip: verify takes three per migration. Objects are named,
never numbered: definitions come from PostgreSQL's own ``pg_get_*def`` functions,
which print names. Objects that belong to an extension are left out (they come
with it), as are the system schemas and the schemas given as excluded.
"""

from __future__ import annotations

import functools


def _member_of_extension(catalog: str, alias: str) -> str:
    return (
        "EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = "
        f"'{catalog}'::regclass AND d.objid = {alias}.oid AND d.deptype = 'e')"
    )


def _comment(oid: str, catalog: str, subid: str = "0") -> str:
    # a direct lookup: obj_description() is a SQL function, many times slower
    return (
        f"(SELECT ds.description FROM pg_description ds WHERE ds.objoid = {oid} "
        f"AND ds.classoid = '{catalog}'::regclass AND ds.objsubid = {subid})"
    )


# how privileges granted to or by an object's owner read, whoever owns it
OWNER = "(owner)"


def _acl(column: str, owner: str, kind: str | None = None) -> str:
    # NULL means the default privileges, which a GRANT then REVOKE spells out:
    # compare the spelled-out form, so that the two read the same
    source = f"coalesce({column}, acldefault('{kind}', {owner}))" if kind else column
    # The owner's name as an aclitem prints it (quoted where needed): half of
    # "name=U/name". An item "owner=..." or ".../owner" then reads "(owner)"
    # there: the schema built by another role compares equal.
    name = (
        f"(SELECT left(m.t, (length(m.t) - 3) / 2) FROM (SELECT "
        f"makeaclitem({owner}, {owner}, 'USAGE', false)::text) m(t))"
    )
    return f"""(SELECT array_agg(e.item ORDER BY e.item COLLATE "C")
     FROM (SELECT CASE WHEN right(g.item, length(g.o) + 1) = '/' || g.o
                       THEN left(g.item, -length(g.o)) || '{OWNER}'
                       ELSE g.item END AS item
           FROM (SELECT CASE WHEN starts_with(x::text, o.o || '=')
                             THEN '{OWNER}' || substr(x::text, length(o.o) + 1)
                             ELSE x::text END AS item, o.o
                 FROM unnest({source}) x, {name} o(o)) g) e)"""


def _owner(owner: str) -> str:
    # the role that reads the snapshot (the one that applied the migrations)
    # is named by no object: a schema built by another role compares equal
    return f"NULLIF(pg_get_userbyid({owner}), current_user)::text"


def _collation(oid: str) -> str:
    # quoted, and qualified outside pg_catalog: app."C" is not "C"
    return f"{oid}::regcollation::text"


ONLY_KINDS = (
    "schemas",
    "relations",
    "functions",
    "types",
    "extensions",
    "default_privileges",
)

# the sections of the query each kind of object needs
_SECTIONS = {
    "schemas": ("schemas",),
    "relations": (
        "relations",
        "columns",
        "constraints",
        "indexes",
        "triggers",
        "policies",
        "sequences",
        "parts",
    ),
    "functions": ("functions",),
    "types": ("types", "parts"),
    "extensions": ("extensions",),
    "default_privileges": ("default_privileges",),
}


@functools.lru_cache(maxsize=64)
def snapshot_query(server_version: int, kinds: frozenset[str] | None = None) -> str:
    """The snapshot query for a server of *server_version* (e.g. 150004).

    Its parameter ``excluded`` lists schema names to leave out. With *kinds* (a
    subset of :data:`ONLY_KINDS`), the query reads only the objects whose oids the
    parameter of the same name lists, and only the sections those kinds need;
    written apart from the full query so that each plan can use the catalogs'
    oid indexes.
    """
    if server_version >= 140000:
        body = (
            "CASE WHEN p.prosqlbody IS NOT NULL THEN pg_get_function_sqlbody(p.oid) "
            "ELSE p.prosrc END"
        )
    else:
        body = "p.prosrc"

    def only(column: str, kind: str) -> str:
        if kinds is None:
            return "true"
        if kind not in kinds:
            return "false"
        return f"{column} = ANY(%({kind})s::oid[])"

    sections = {
        "schemas": f"""
    SELECT json_agg(json_build_object(
        'oid', ns.oid, 'name', ns.nspname,
        'comment', {_comment("ns.oid", "pg_namespace")},
        'owner', {_owner("ns.nspowner")},
        'acl', {_acl("ns.nspacl", "ns.nspowner", "n")}))
    FROM ns WHERE {only("ns.oid", "schemas")}""",
        "relations": f"""
    SELECT json_agg(json_build_object(
        'oid', r.oid, 'schema', r.nspname, 'name', r.relname, 'kind', r.relkind,
        'filenode', r.relfilenode, 'persistence', r.relpersistence,
        'rls', r.relrowsecurity, 'rls_forced', r.relforcerowsecurity,
        'replica_identity', r.relreplident,
        'replica_index', CASE WHEN r.relreplident = 'i' THEN
                             (SELECT ic.relname FROM pg_index i
                              JOIN pg_class ic ON ic.oid = i.indexrelid
                              WHERE i.indrelid = r.oid AND i.indisreplident) END,
        'populated', r.relispopulated,
        'server', CASE WHEN r.relkind = 'f' THEN
                      (SELECT fs.srvname FROM pg_foreign_table ft
                       JOIN pg_foreign_server fs ON fs.oid = ft.ftserver
                       WHERE ft.ftrelid = r.oid) END,
        'foreign_options', CASE WHEN r.relkind = 'f' THEN
                               (SELECT array_agg(o ORDER BY o COLLATE "C")
                                FROM pg_foreign_table ft, unnest(ft.ftoptions) o
                                WHERE ft.ftrelid = r.oid) END,
        'options', (SELECT array_agg(o ORDER BY o COLLATE "C")
                    FROM unnest(r.reloptions) o),
        'owner', {_owner("r.relowner")},
        'acl', {_acl("r.relacl", "r.relowner", "r")},
        'comment', {_comment("r.oid", "pg_class")},
        'partition_key', CASE WHEN r.relkind = 'p'
                              THEN pg_get_partkeydef(r.oid) END,
        'partition_of', (SELECT pr.oid::regclass::text FROM pg_inherits i
                         JOIN pg_class pr ON pr.oid = i.inhparent
                         WHERE i.inhrelid = r.oid AND r.relispartition),
        'partition_bound', pg_get_expr(r.relpartbound, r.oid),
        'inherits', (SELECT array_agg(i.inhparent::regclass::text
                                      ORDER BY i.inhseqno)
                     FROM pg_inherits i
                     WHERE i.inhrelid = r.oid AND NOT r.relispartition),
        'definition', CASE WHEN r.relkind IN ('v', 'm')
                           THEN pg_get_viewdef(r.oid, true) END))
    FROM rels r WHERE r.relkind <> 'S'""",
        "columns": f"""
    SELECT json_agg(col) FROM (SELECT json_build_object(
        'schema', r.nspname, 'relation', r.relname, 'name', a.attname,
        'attnum', a.attnum,
        'position', row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum),
        'type', format_type(a.atttypid, a.atttypmod),
        'not_null', a.attnotnull,
        'default', CASE WHEN a.attgenerated = '' THEN pg_get_expr(d.adbin, d.adrelid)
                   END,
        'generated', CASE WHEN a.attgenerated <> ''
                          THEN a.attgenerated::text || ' '
                               || pg_get_expr(d.adbin, d.adrelid) END,
        'identity', NULLIF(a.attidentity::text, ''),
        'collation', CASE WHEN a.attcollation <> t.typcollation
                          THEN {_collation("a.attcollation")} END,
        'comment', {_comment("a.attrelid", "pg_class", "a.attnum")},
        'acl', CASE WHEN a.attacl IS NOT NULL
                    THEN {_acl("a.attacl", "r.relowner")} END) AS col
    FROM pg_attribute a
    JOIN rels r ON r.oid = a.attrelid
    JOIN pg_type t ON t.oid = a.atttypid
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attnum > 0 AND NOT a.attisdropped AND r.relkind <> 'S') cols""",
        "constraints": f"""
    SELECT json_agg(json_build_object(
        'schema', r.nspname, 'relation', r.relname, 'name', c.conname,
        'type', c.contype, 'definition', pg_get_constraintdef(c.oid, true),
        'deferrable', c.condeferrable, 'deferred', c.condeferred,
        'validated', c.convalidated,
        'comment', {_comment("c.oid", "pg_constraint")}))
    FROM pg_constraint c JOIN rels r ON r.oid = c.conrelid
    -- NOT NULL constraints (catalogued since PostgreSQL 18) are the columns'
    -- not_null, so that snapshots of different versions compare; and the
    -- copies PostgreSQL makes of a partitioned table's constraint for each
    -- partition (on the partition, or on the referencing table for each
    -- partition a foreign key references) follow from that constraint
    WHERE c.contype <> 'n' AND c.conparentid = 0""",
        "indexes": f"""
    SELECT json_agg(json_build_object(
        'oid', i.indexrelid, 'relation_oid', i.indrelid,
        'schema', r.nspname, 'relation', r.relname, 'name', ic.relname,
        'definition', pg_get_indexdef(i.indexrelid),
        'valid', i.indisvalid,
        'constraint', (SELECT c.conname FROM pg_constraint c
                       WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid),
        'comment', {_comment("ic.oid", "pg_class")}))
    FROM pg_index i
    JOIN rels r ON r.oid = i.indrelid
    JOIN pg_class ic ON ic.oid = i.indexrelid""",
        "triggers": f"""
    SELECT json_agg(json_build_object(
        'schema', r.nspname, 'relation', r.relname, 'name', t.tgname,
        'definition', pg_get_triggerdef(t.oid, true), 'enabled', t.tgenabled,
        'comment', {_comment("t.oid", "pg_trigger")}))
    FROM pg_trigger t JOIN rels r ON r.oid = t.tgrelid
    WHERE NOT t.tgisinternal""",
        "policies": f"""
    SELECT json_agg(json_build_object(
        'schema', r.nspname, 'relation', r.relname, 'name', p.polname,
        'command', p.polcmd, 'permissive', p.polpermissive,
        'roles', (SELECT array_agg(y ORDER BY y COLLATE "C") FROM (
                      SELECT CASE WHEN x = 0 THEN 'public'
                                  ELSE pg_get_userbyid(x)::text END AS y
                      FROM unnest(p.polroles) x) z),
        'using', pg_get_expr(p.polqual, p.polrelid),
        'check', pg_get_expr(p.polwithcheck, p.polrelid),
        'comment', {_comment("p.oid", "pg_policy")}))
    FROM pg_policy p JOIN rels r ON r.oid = p.polrelid""",
        "sequences": f"""
    SELECT json_agg(json_build_object(
        'oid', r.oid, 'schema', r.nspname, 'name', r.relname,
        'type', format_type(s.seqtypid, NULL), 'start', s.seqstart,
        'increment', s.seqincrement, 'min', s.seqmin, 'max', s.seqmax,
        'cycle', s.seqcycle, 'cache', s.seqcache,
        'owned_by', (SELECT d.refobjid::regclass::text || '.' || quote_ident(a.attname)
                     FROM pg_depend d
                     JOIN pg_attribute a ON a.attrelid = d.refobjid
                                        AND a.attnum = d.refobjsubid
                     WHERE d.classid = 'pg_class'::regclass AND d.objid = r.oid
                       AND d.refclassid = 'pg_class'::regclass
                       AND d.deptype IN ('a', 'i') LIMIT 1),
        'owner', {_owner("r.relowner")},
        'acl', {_acl("r.relacl", "r.relowner", "s")},
        'comment', {_comment("r.oid", "pg_class")}))
    FROM rels r JOIN pg_sequence s ON s.seqrelid = r.oid""",
        "functions": f"""
    SELECT json_agg(json_build_object(
        'oid', p.oid, 'schema', ns.nspname, 'name', p.proname,
        'identity', pg_get_function_identity_arguments(p.oid),
        'kind', p.prokind,
        'arguments', pg_get_function_arguments(p.oid),
        'result', pg_get_function_result(p.oid),
        'language', l.lanname, 'volatility', p.provolatile,
        'strict', p.proisstrict, 'security_definer', p.prosecdef,
        'leakproof', p.proleakproof, 'parallel', p.proparallel,
        'config', (SELECT array_agg(x ORDER BY x COLLATE "C")
                   FROM unnest(p.proconfig) x),
        'body', CASE WHEN p.prokind = 'a' THEN NULL ELSE {body} END,
        'aggregate', (SELECT json_build_object(
                          'transition', ag.aggtransfn::regproc::text,
                          'final', NULLIF(ag.aggfinalfn::regproc::text, '-'),
                          'state_type', format_type(ag.aggtranstype, NULL),
                          'initial', ag.agginitval)
                      FROM pg_aggregate ag WHERE ag.aggfnoid = p.oid),
        'owner', {_owner("p.proowner")},
        'acl', {_acl("p.proacl", "p.proowner", "f")},
        'comment', {_comment("p.oid", "pg_proc")}))
    FROM pg_proc p
    JOIN ns ON ns.oid = p.pronamespace
    JOIN pg_language l ON l.oid = p.prolang
    WHERE NOT {_member_of_extension("pg_proc", "p")}
      AND {only("p.oid", "functions")}
      -- functions made by the system for another object (multirange constructors)
      AND NOT EXISTS (SELECT 1 FROM pg_depend d
                      WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                        AND d.deptype = 'i')""",
        "types": f"""
    SELECT json_agg(json_build_object(
        'oid', t.oid, 'schema', ns.nspname, 'name', t.typname, 'kind', t.typtype,
        'relation_oid', NULLIF(t.typrelid, 0),
        'labels', (SELECT array_agg(e.enumlabel ORDER BY e.enumsortorder)
                   FROM pg_enum e WHERE e.enumtypid = t.oid),
        'base_type', CASE WHEN t.typtype = 'd'
                          THEN format_type(t.typbasetype, t.typtypmod) END,
        'not_null', CASE WHEN t.typtype = 'd' THEN t.typnotnull END,
        'default', CASE WHEN t.typtype = 'd' THEN pg_get_expr(t.typdefaultbin, 0) END,
        'collation', CASE WHEN t.typtype = 'd' AND t.typcollation <>
                               (SELECT b.typcollation FROM pg_type b
                                WHERE b.oid = t.typbasetype)
                          THEN {_collation("t.typcollation")} END,
        'constraints', (SELECT json_object_agg(c.conname,
                                               pg_get_constraintdef(c.oid, true))
                        FROM pg_constraint c
                        WHERE c.contypid = t.oid AND c.contype <> 'n'),
        'attributes', (SELECT array_agg(
                           quote_ident(a.attname) || ' '
                           || format_type(a.atttypid, a.atttypmod)
                           || CASE WHEN a.attcollation <> at.typcollation
                                   THEN ' COLLATE ' || {_collation("a.attcollation")}
                                   ELSE '' END
                           ORDER BY a.attnum)
                       FROM pg_attribute a JOIN pg_type at ON at.oid = a.atttypid
                       WHERE t.typtype = 'c' AND a.attrelid = t.typrelid
                         AND a.attnum > 0 AND NOT a.attisdropped),
        'subtype', (SELECT format_type(rg.rngsubtype, NULL) FROM pg_range rg
                    WHERE rg.rngtypid = t.oid),
        'owner', {_owner("t.typowner")},
        'acl', {_acl("t.typacl", "t.typowner", "T")},
        'comment', {_comment("t.oid", "pg_type")}))
    FROM pg_type t JOIN ns ON ns.oid = t.typnamespace
    WHERE t.typtype IN ('e', 'd', 'r', 'c')
      AND (t.typtype <> 'c' OR (SELECT c.relkind FROM pg_class c
                                WHERE c.oid = t.typrelid) = 'c')
      AND NOT {_member_of_extension("pg_type", "t")}
      AND {only("t.oid", "types")}""",
        "parts": f"""
    -- constraints (internal ones too), triggers, policies and defaults, with the
    -- relation or type they belong to: a refresh maps a dropped one to its owner
    SELECT json_agg(json_build_array(x.catalog, x.oid, x.owner_class, x.owner))
    FROM (SELECT 'pg_constraint' AS catalog, c.oid, 'rel' AS owner_class,
                 c.conrelid AS owner
          FROM rels r JOIN pg_constraint c ON c.conrelid = r.oid
          UNION ALL
          SELECT 'pg_constraint', c.oid, 'type', c.contypid
          FROM pg_type t JOIN ns ON ns.oid = t.typnamespace
          JOIN pg_constraint c ON c.contypid = t.oid
          WHERE t.typtype = 'd' AND {only("t.oid", "types")}
          UNION ALL
          SELECT 'pg_trigger', t.oid, 'rel', t.tgrelid
          FROM rels r JOIN pg_trigger t ON t.tgrelid = r.oid
          UNION ALL
          SELECT 'pg_policy', p.oid, 'rel', p.polrelid
          FROM rels r JOIN pg_policy p ON p.polrelid = r.oid
          UNION ALL
          SELECT 'pg_attrdef', d.oid, 'rel', d.adrelid
          FROM rels r JOIN pg_attrdef d ON d.adrelid = r.oid) x""",
        "extensions": f"""
    SELECT json_agg(json_build_object(
        'oid', e.oid, 'name', e.extname, 'schema', n.nspname,
        'version', e.extversion,
        'comment', {_comment("e.oid", "pg_extension")}))
    FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
    WHERE e.extname <> 'plpgsql' AND {only("e.oid", "extensions")}""",
        "default_privileges": f"""
    -- what objects a role makes later get: globally, or in one schema
    SELECT json_agg(json_build_object(
        'oid', d.oid, 'role', {_owner("d.defaclrole")}, 'schema', n.nspname,
        'objects', d.defaclobjtype,
        'acl', {_acl("d.defaclacl", "d.defaclrole")}))
    FROM pg_default_acl d LEFT JOIN ns n ON n.oid = d.defaclnamespace
    WHERE (d.defaclnamespace = 0 OR n.oid IS NOT NULL)
      AND {only("d.oid", "default_privileges")}""",
    }
    if kinds is None:
        wanted = list(sections)
    else:
        wanted = [name for name in sections if any(name in _SECTIONS[k] for k in kinds)]
    fields = ",\n".join(f"'{name}', (\n{sections[name]})" for name in wanted)
    return f"""
WITH ns AS (
    SELECT n.oid, n.nspname, n.nspacl, n.nspowner
    FROM pg_namespace n
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
      AND n.nspname <> ALL(%(excluded)s::text[])
      AND NOT {_member_of_extension("pg_namespace", "n")}
),
rels AS (
    SELECT c.*, ns.nspname
    FROM pg_class c JOIN ns ON ns.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'f', 'v', 'm', 'S')
      AND NOT {_member_of_extension("pg_class", "c")}
      AND {only("c.oid", "relations")}
)
SELECT json_build_object(
{fields}
)
"""
