"""``dbamgr drift``: what was changed in a live database outside its migrations.

The migrations the target's history records as applied are replayed, in version
order, on a scratch database that has the target database's own settings (its
search_path, say); its schema is the expected one. Every difference from the live
schema is drift.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from dbamgr.config import Project
from dbamgr.db import connect
from dbamgr.errors import MigrationError
from dbamgr.migrations.history import APPLIED, HistoryTables
from dbamgr.migrations.scratch import apply_migrations, scratch_target
from dbamgr.migrations.source import load_migrations
from dbamgr.schema.diff import Change, diff_snapshots
from dbamgr.schema.snapshot import take_snapshot
from dbamgr.target import Target

# The target database's own settings (ALTER DATABASE … SET), then those for the
# role drift connects as in it: the migrations ran under them (a search_path
# decides where an unqualified CREATE TABLE goes), so the replay does too.
_SETTINGS = """
SELECT split_part(c, '=', 1), substr(c, strpos(c, '=') + 1)
FROM pg_catalog.pg_db_role_setting s, unnest(s.setconfig) AS c
WHERE s.setdatabase = (SELECT d.oid FROM pg_catalog.pg_database d
                       WHERE d.datname = pg_catalog.current_database())
  AND s.setrole IN (0, (SELECT r.oid FROM pg_catalog.pg_roles r
                        WHERE r.rolname = current_user))
ORDER BY s.setrole
"""


def _copy_settings(scratch: Target, settings: list[tuple[str, str]]) -> list[str]:
    """Give the scratch database the target's *settings*; return a warning for
    each that could not be copied."""
    warnings = []
    with connect(scratch.url, purpose="drift") as conn:
        database = sql.Identifier(conn.info.dbname)
        for name, value in settings:
            try:
                with conn.transaction():
                    # set for the session, parsed as the server parses it, then
                    # kept for the database: lists such as search_path stay lists
                    conn.execute(
                        "SELECT pg_catalog.set_config(%s, %s, false)", [name, value]
                    )
                    conn.execute(
                        sql.SQL("ALTER DATABASE {} SET {} FROM CURRENT").format(
                            database, sql.Identifier(name)
                        )
                    )
            except psycopg.Error as exc:
                warnings.append(
                    f"the target's setting {name} = {value!r} could not be given to "
                    f"the replay ({exc.diag.message_primary}): objects may differ"
                )
    return warnings


@dataclass
class DriftReport:
    """What ``dbamgr drift`` found."""

    target: str
    replayed: int
    changes: list[Change] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def drifted(self) -> bool:
        return bool(self.changes)


def detect_drift(
    project: Project, target: Target, *, server_url: str | None = None
) -> DriftReport:
    """Compare the live schema of *target* with what its applied migrations build.

    Changes read as from the migrations' schema (before) to the live one (after):
    an object "added" exists live but in no migration.
    """
    settings = project.config.migrations
    tables = HistoryTables(settings.history_schema, settings.history_table)
    excluded = (settings.history_schema,)
    source = load_migrations(project.migrations_dir)
    with connect(target.url, purpose="drift") as conn:
        history = tables.read(conn)
        live = take_snapshot(conn, exclude_schemas=excluded)
        live_version = conn.info.server_version
        live_settings = conn.execute(_SETTINGS).fetchall()

    warnings = []
    replay = []
    for row in history:
        migration = source.by_version.get(row.version)
        if row.status != APPLIED:
            warnings.append(
                f'"{row.ident}" is {row.status}: its partial changes may show as drift'
            )
        elif migration is None:
            warnings.append(
                f'"{row.ident}" is applied but its file is missing: its objects will '
                "show as drift"
            )
        else:
            if migration.checksum != row.checksum:
                warnings.append(
                    f'"{row.ident}" changed since it was applied: the replay uses the '
                    "file as it is now"
                )
            replay.append(migration)

    with scratch_target(
        project, server_url, prefix="dbamgr_drift", migrations=replay
    ) as scratch:
        warnings += _copy_settings(scratch, live_settings)
        try:
            session = apply_migrations(project, scratch, replay)
        except MigrationError as exc:
            raise MigrationError(
                "replaying the applied migrations on a scratch database failed "
                f"(the target is untouched):\n{exc.message}",
                hint="the migrations no longer build what the target's history "
                "says: fix the file, or compare by hand with `dbamgr schema diff`",
            ) from exc
        try:
            expected = take_snapshot(session.conn, exclude_schemas=excluded)
            scratch_version = session.conn.info.server_version
        finally:
            session.close()

    if scratch_version // 10000 != live_version // 10000:
        warnings.append(
            f"the migrations were replayed on PostgreSQL {scratch_version // 10000} "
            f"but the target runs {live_version // 10000}: definitions may print "
            "differently; set [server] bin_dir (or use --server) to match it"
        )
    report = DriftReport(target.display, len(replay), warnings=warnings)
    report.changes = diff_snapshots(expected, live).changes
    return report
