"""Change capture: event triggers that note which objects each DDL command touched.

A :class:`~dbamgr.schema.incremental.SnapshotCache` must learn what a run of
statements changed. Without help it scans the catalogs for rows written since the
run began, which costs a millisecond per refresh on a schema of a few hundred
objects. PostgreSQL can say it directly: an event trigger on ``ddl_command_end``
sees every object a command created or altered (``pg_event_trigger_ddl_commands``)
and one on ``sql_drop`` every object it dropped, cascades included. The two
triggers installed here write those objects into an unlogged table, in the
command's own transaction (a rolled back command leaves nothing).

The function :func:`install_capture` returns takes the noted objects out of the
table (as :class:`Change` rows); ``verify`` calls it before COMMIT, in the round
trip of the run's last statement, and the cache maps them to the objects it
reads again.

The functions run as their owner (SECURITY DEFINER, with a fixed search_path),
so a migration that switches to another role (SET ROLE) is captured too.

Event triggers need a superuser. Without them the cache scans as before.
``GRANT`` and ``REVOKE`` name no object to event triggers: the cache reads the
whole schema after them. Commands on roles (``ALTER ROLE … RENAME``,
``REASSIGN OWNED``) fire no event trigger at all: the function also reports
the locks the transaction holds on shared objects and catalogs, as a change to
that catalog (``pg_authid``), which the cache answers with a whole read.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

logger = logging.getLogger(__name__)

CHANGES_TABLE = "captured_changes"
_TAKE_FUNCTION = "take_captured_changes"
_COMMANDS_FUNCTION = "capture_ddl_commands"
_DROPS_FUNCTION = "capture_dropped_objects"
# event trigger names are global to a database
_COMMANDS_TRIGGER = "dbamgr_capture_ddl_commands"
_DROPS_TRIGGER = "dbamgr_capture_dropped_objects"

_INSTALL = """
CREATE UNLOGGED TABLE IF NOT EXISTS {table} (
    classid oid, objid oid, dropped boolean NOT NULL);
CREATE OR REPLACE FUNCTION {commands}() RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog AS $body$
BEGIN
    -- the commands of an extension's script make its members, which
    -- snapshots leave out; the extension itself is noted
    INSERT INTO {table} (classid, objid, dropped)
    SELECT c.classid, c.objid, false
    FROM pg_catalog.pg_event_trigger_ddl_commands() c
    WHERE NOT c.in_extension;
END
$body$;
CREATE OR REPLACE FUNCTION {drops}() RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog AS $body$
BEGIN
    -- a dropped column is a change to its table, not a drop
    INSERT INTO {table} (classid, objid, dropped)
    SELECT d.classid, d.objid, d.objsubid = 0
    FROM pg_catalog.pg_event_trigger_dropped_objects() d;
END
$body$;
DROP EVENT TRIGGER IF EXISTS {commands_trigger};
DROP EVENT TRIGGER IF EXISTS {drops_trigger};
CREATE EVENT TRIGGER {commands_trigger} ON ddl_command_end
    EXECUTE FUNCTION {commands}();
CREATE EVENT TRIGGER {drops_trigger} ON sql_drop EXECUTE FUNCTION {drops}();
-- a migration that sets session_replication_role must not blind the capture
ALTER EVENT TRIGGER {commands_trigger} ENABLE ALWAYS;
ALTER EVENT TRIGGER {drops_trigger} ENABLE ALWAYS;
CREATE OR REPLACE FUNCTION {take}(
    OUT catalog text, OUT object_id oid, OUT object_dropped boolean)
RETURNS SETOF record LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog AS $body$
BEGIN
    RETURN QUERY
    WITH taken AS (DELETE FROM {table} RETURNING classid, objid, dropped)
    SELECT t.classid::pg_catalog.regclass::text, t.objid, t.dropped FROM taken t;
    -- Commands on roles (ALTER ROLE, REASSIGN OWNED) fire no event trigger.
    -- What tells of them is a lock the transaction holds on a shared object
    -- (a role: also taken by a command that names one) or a write lock on a
    -- shared catalog (pg_authid), in database 0: noted as that catalog.
    RETURN QUERY
    SELECT coalesce(l.classid, l.relation)::pg_catalog.regclass::text,
           coalesce(l.objid, 0::oid), false
    FROM pg_catalog.pg_locks l
    WHERE l.pid = pg_catalog.pg_backend_pid() AND l.database = 0
      AND (l.locktype = 'object'
           OR (l.locktype = 'relation' AND l.mode <> 'AccessShareLock'))
    LIMIT 1;
END
$body$;
GRANT USAGE ON SCHEMA {schema} TO PUBLIC;
GRANT EXECUTE ON FUNCTION {take}() TO PUBLIC;
"""


@dataclass(frozen=True)
class Change:
    """An object a DDL command created, altered or dropped (*dropped*; a dropped
    column alters its table), as the capture noted it: its catalog
    (``pg_class``, ``pg_proc``…) and oid. GRANT and REVOKE name no object
    (``oid`` None)."""

    catalog: str | None
    oid: int | None
    dropped: bool


def changes_table(schema: str) -> sql.Composed:
    """The table the capture writes to, in dbamgr's own *schema*."""
    return sql.SQL("{}.{}").format(
        sql.Identifier(schema), sql.Identifier(CHANGES_TABLE)
    )


def install_capture(conn: psycopg.Connection[Any], schema: str) -> str | None:
    """Install the capture in the database *conn* is connected to, its table and
    functions in dbamgr's own *schema* (which snapshots leave out). Return the
    qualified name of the function that takes the noted changes out, as rows
    (catalog, oid, dropped) of :class:`Change`; None if event triggers cannot be
    made here (they need a superuser). Meant for scratch databases: the two event
    triggers live as long as the database."""
    row = conn.execute(
        "SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user"
    ).fetchone()
    if not row or not row[0]:
        logger.debug("not a superuser: snapshots find changes by scanning")
        return None
    name = sql.Identifier(schema)
    take = sql.SQL("{}.{}").format(name, sql.Identifier(_TAKE_FUNCTION))
    query = sql.SQL(_INSTALL).format(
        table=changes_table(schema),
        commands=sql.SQL("{}.{}").format(name, sql.Identifier(_COMMANDS_FUNCTION)),
        drops=sql.SQL("{}.{}").format(name, sql.Identifier(_DROPS_FUNCTION)),
        commands_trigger=sql.Identifier(_COMMANDS_TRIGGER),
        drops_trigger=sql.Identifier(_DROPS_TRIGGER),
        take=take,
        schema=name,
    )
    with conn.transaction():
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(name))
        conn.execute(query)
    return take.as_string(conn)
