"""Change capture: event triggers that note which objects each DDL command touched.

A :class:`~dbamgr.schema.incremental.SnapshotCache` must learn what a run of
statements changed. Without help it scans the catalogs for rows written since the
run began, which costs a millisecond per refresh on a schema of a few hundred
objects. PostgreSQL can say it directly: an event trigger on ``ddl_command_end``
sees every object a command created or altered (``pg_event_trigger_ddl_commands``)
and one on ``sql_drop`` every object it dropped, cascades included. The two
triggers installed here write those objects into an unlogged table, in the
command's own transaction (a rolled back command leaves nothing), and the cache
takes them out when it refreshes.

Event triggers need a superuser. :func:`install_capture` says whether it could
install them; without them the cache scans as before. ``GRANT`` and ``REVOKE``
name no object to event triggers, so they also make the cache scan.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from psycopg import sql

logger = logging.getLogger(__name__)

CHANGES_TABLE = "captured_changes"
_COMMANDS_FUNCTION = "capture_ddl_commands"
_DROPS_FUNCTION = "capture_dropped_objects"
# event trigger names are global to a database
_COMMANDS_TRIGGER = "dbamgr_capture_ddl_commands"
_DROPS_TRIGGER = "dbamgr_capture_dropped_objects"

_INSTALL = """
CREATE UNLOGGED TABLE IF NOT EXISTS {table} (classid oid, objid oid);
CREATE OR REPLACE FUNCTION {commands}() RETURNS event_trigger
LANGUAGE plpgsql AS $body$
BEGIN
    INSERT INTO {table} (classid, objid)
    SELECT c.classid, c.objid FROM pg_catalog.pg_event_trigger_ddl_commands() c;
END
$body$;
CREATE OR REPLACE FUNCTION {drops}() RETURNS event_trigger
LANGUAGE plpgsql AS $body$
BEGIN
    INSERT INTO {table} (classid, objid)
    SELECT d.classid, d.objid FROM pg_catalog.pg_event_trigger_dropped_objects() d;
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
"""


def changes_table(schema: str) -> sql.Composed:
    """The table the capture writes to, in dbamgr's own *schema*."""
    return sql.SQL("{}.{}").format(
        sql.Identifier(schema), sql.Identifier(CHANGES_TABLE)
    )


def install_capture(conn: psycopg.Connection[Any], schema: str) -> bool:
    """Install the capture in the database *conn* is connected to, its table and
    functions in dbamgr's own *schema* (which snapshots leave out); return whether
    it could (event triggers need a superuser). Meant for scratch databases: it
    adds two event triggers that live as long as the database."""
    row = conn.execute(
        "SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user"
    ).fetchone()
    if not row or not row[0]:
        logger.debug("not a superuser: snapshots find changes by scanning")
        return False
    name = sql.Identifier(schema)
    query = sql.SQL(_INSTALL).format(
        table=changes_table(schema),
        commands=sql.SQL("{}.{}").format(name, sql.Identifier(_COMMANDS_FUNCTION)),
        drops=sql.SQL("{}.{}").format(name, sql.Identifier(_DROPS_FUNCTION)),
        commands_trigger=sql.Identifier(_COMMANDS_TRIGGER),
        drops_trigger=sql.Identifier(_DROPS_TRIGGER),
    )
    with conn.transaction():
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(name))
        conn.execute(query)
    return True
