"""``dbamgr backup logical`` and ``dbamgr restore logical``.

Each database is dumped by pg_dump in directory format with parallel jobs; roles
and tablespaces go to ``globals.sql`` (pg_dumpall --globals-only). A restore
creates a new database and fills it with pg_restore; if anything fails, the new
database is dropped again, so the server is left as it was.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from psycopg import sql
from psycopg.conninfo import make_conninfo

from dbamgr.backup.errors import BackupError
from dbamgr.backup.manifest import file_checksums
from dbamgr.backup.progress import (
    ProgressCallback,
    connection_options,
    report,
    run_program,
)
from dbamgr.backup.repository import (
    KIND_LOGICAL,
    STATUS_COMPLETE,
    STATUS_RUNNING,
    BackupInfo,
    Repository,
    utcnow,
)
from dbamgr.db.connect import connect
from dbamgr.log import mask_url
from dbamgr.server.binaries import PgBinaries

logger = logging.getLogger(__name__)

GLOBALS = "globals.sql"


def _database_url(url: str, database: str) -> str:
    return make_conninfo(url, dbname=database)


def _run(args: list[object], url: str, step: str) -> None:
    """Run a client program against *url*, its password passed in the environment."""
    dsn, env = connection_options(url)
    argv = [str(a) for a in args] + [f"--dbname={dsn}"]
    run_program(argv, step=step, env=env)


def _databases(url: str) -> list[str]:
    with connect(url, purpose="backup") as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate"
            " ORDER BY datname"
        ).fetchall()
    return [str(r[0]) for r in rows]


def take_logical_backup(
    repo: Repository,
    url: str,
    binaries: PgBinaries,
    *,
    databases: list[str] | None = None,
    jobs: int = 2,
    on_progress: ProgressCallback | None = None,
) -> BackupInfo:
    """Dump *databases* (default: every database one can connect to) and the
    globals into a new logical backup."""
    began = time.monotonic()
    chosen = databases or _databases(url)
    with connect(url, purpose="backup") as conn:
        row = conn.execute(
            "SELECT current_setting('server_version'),"
            " current_setting('server_version_num')::int,"
            " (SELECT system_identifier::text FROM pg_control_system())"
        ).fetchone()
    assert row is not None
    info = BackupInfo(
        id=repo.new_id(KIND_LOGICAL),
        kind=KIND_LOGICAL,
        status=STATUS_RUNNING,
        start_time=utcnow(),
        pg_version=str(row[0]).split()[0],
        pg_major=int(row[1]) // 10000,
        system_identifier=str(row[2]),
        databases=chosen,
        source=mask_url(url),
    )
    with repo.locked("logical backup"):
        repo.save(info)
        try:
            with repo.storage.staging(repo.data_prefix(info.id)) as work:
                for number, database in enumerate(chosen):
                    report(on_progress, f"dumping {database}", number, len(chosen))
                    _run(
                        [
                            binaries.path("pg_dump"),
                            "--format=directory",
                            f"--jobs={jobs}",
                            "--no-password",
                            "--file",
                            work / database,
                        ],
                        _database_url(url, database),
                        f"dumping {database}",
                    )
                report(on_progress, "dumping roles and tablespaces")
                _run(
                    [
                        binaries.path("pg_dumpall"),
                        "--globals-only",
                        "--no-password",
                        "--file",
                        work / GLOBALS,
                    ],
                    url,
                    "dumping globals",
                )
                info.files = file_checksums(work)
                info.size = sum(int(str(f["size"])) for f in info.files.values())
        except BaseException:
            repo.storage.remove(f"catalog/{info.id}.json")
            raise
        info.status = STATUS_COMPLETE
        info.stop_time = utcnow()
        info.seconds = round(time.monotonic() - began, 3)
        repo.save(info)
    return info


@dataclass
class LogicalRestoreReport:
    """What ``restore logical`` created."""

    backup: str
    databases: dict[str, str] = field(default_factory=dict)
    globals_applied: bool = False
    seconds: float = 0.0


def restore_logical(
    repo: Repository,
    url: str,
    binaries: PgBinaries,
    *,
    backup_id: str | None = None,
    database: str | None = None,
    into: str | None = None,
    jobs: int = 2,
    with_globals: bool = False,
    on_progress: ProgressCallback | None = None,
) -> LogicalRestoreReport:
    """Restore databases of a logical backup into new databases on *url*'s
    server (*into* renames a single one); existing databases are refused."""
    began = time.monotonic()
    if backup_id is None:
        logical = repo.complete_backups(physical=False)
        if not logical:
            raise BackupError(
                "the repository holds no logical backup",
                hint="take one with `dbamgr backup logical`",
            )
        info = logical[-1]
    else:
        info = repo.get(backup_id)
    if info.kind != KIND_LOGICAL or not info.complete:
        raise BackupError(f'backup "{info.id}" is not a complete logical backup')
    names = [database] if database else info.databases
    unknown = [n for n in names if n not in info.databases]
    if unknown:
        raise BackupError(
            f'backup {info.id} holds no database "{unknown[0]}"',
            hint="it holds: " + ", ".join(info.databases),
        )
    if into and len(names) != 1:
        raise BackupError("--into renames one database: name it with --database")
    plan = {name: into or name for name in names}
    with connect(url, purpose="restore") as conn:
        taken = {
            str(r[0])
            for r in conn.execute("SELECT datname FROM pg_database").fetchall()
        }
    clash = sorted(set(plan.values()) & taken)
    if clash:
        raise BackupError(
            f'database "{clash[0]}" exists already: a restore never writes into an '
            "existing database",
            hint="restore under another name with --into NAME, or drop it first",
        )
    directory = repo.data_dir(info.id)
    result = LogicalRestoreReport(info.id)
    if with_globals:
        report(on_progress, "restoring roles and tablespaces")
        _run(
            [
                binaries.path("psql"),
                "--no-psqlrc",
                "--quiet",
                "--file",
                directory / GLOBALS,
            ],
            url,
            "restoring globals",
        )
        result.globals_applied = True
    for number, (source, name) in enumerate(plan.items()):
        report(on_progress, f"restoring {name}", number, len(plan))
        with connect(url, purpose="restore") as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            _run(
                [
                    binaries.path("pg_restore"),
                    f"--jobs={jobs}",
                    "--exit-on-error",
                    "--no-password",
                    directory / source,
                ],
                _database_url(url, name),
                f"restoring {name}",
            )
        except BaseException:
            with connect(url, purpose="restore") as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(name)
                    )
                )
            raise
        result.databases[source] = name
    result.seconds = round(time.monotonic() - began, 3)
    return result
