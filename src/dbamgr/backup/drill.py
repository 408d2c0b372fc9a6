"""``dbamgr drill``: restore into a scratch cluster, check it, measure RPO and RTO.

The newest base backup (or the one before ``to_time``) is restored into a
temporary directory and started on a free port with archiving off. When the
backup recorded row counts, recovery first pauses at the backup's marker
transaction, where every table must hold exactly the rows counted then; recovery
then goes on to the end of the archived WAL (or stops at ``to_time``) and the
cluster is promoted. amcheck then checks every B-tree index of every database.

RTO is the time from the start of the restore until the cluster accepts
connections and the checks have passed; RPO is how much older the newest
heartbeat recovered is than the newest one on the source. The scratch cluster
is always removed.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dbamgr.backup.errors import BackupError
from dbamgr.backup.heartbeat import Heartbeat, count_rows, newest_heartbeat
from dbamgr.backup.progress import ProgressCallback, report
from dbamgr.backup.recovery import start_restored
from dbamgr.backup.repository import Repository, utcnow
from dbamgr.backup.restore import choose_backup, restore_backup
from dbamgr.backup.target import RestoreTarget
from dbamgr.db.connect import connect
from dbamgr.errors import DbamgrError
from dbamgr.server.binaries import PgBinaries
from dbamgr.server.cluster import LocalCluster

logger = logging.getLogger(__name__)

_HBA = (
    "# written by dbamgr drill: a scratch cluster reachable from this host only\n"
    "host all all 127.0.0.1/32 trust\n"
)

_BTREE_INDEXES = """
SELECT c.oid::regclass::text
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_am am ON am.oid = c.relam
WHERE am.amname = 'btree' AND i.indisvalid AND i.indisready
  AND c.relpersistence <> 't'
ORDER BY 1
"""


@dataclass
class Check:
    """One check of a drill."""

    name: str
    ok: bool
    detail: str = ""


@dataclass
class DrillReport:
    """The outcome of a drill (also stored in the repository under drills/)."""

    backup: str | None
    target: str
    started_at: datetime
    rto_seconds: float | None = None
    rpo_seconds: float | None = None
    rto_target: float | None = None
    rpo_target: float | None = None
    indexes_checked: int = 0
    tables_checked: int = 0
    restored_heartbeat: datetime | None = None
    source_heartbeat: datetime | None = None
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def add(self, name: str, ok: bool, detail: str = "") -> None:
        self.checks.append(Check(name, ok, detail))


def _compare_counts(
    cluster: LocalCluster,
    recorded: dict[str, dict[str, int]],
    exact: bool,
    drill: DrillReport,
) -> None:
    for database, counts in recorded.items():
        with connect(cluster.url(database), purpose="drill") as conn:
            found = count_rows(conn)
        drill.tables_checked += len(counts)
        wrong = [
            f"{table}: {found.get(table)} rows, {count} at backup time"
            for table, count in sorted(counts.items())
            if found.get(table) != count
        ]
        if not wrong:
            drill.add(f"row counts in {database}", True, f"{len(counts)} tables match")
        elif exact:
            drill.add(f"row counts in {database}", False, "; ".join(wrong[:5]))
        else:
            drill.add(
                f"row counts in {database}",
                True,
                "counts at backup time were inexact (writes ran while they were "
                "taken): " + "; ".join(wrong[:3]),
            )


def _amcheck(cluster: LocalCluster, drill: DrillReport) -> None:
    with cluster.connect() as conn:
        databases = [
            str(r[0])
            for r in conn.execute(
                "SELECT datname FROM pg_database WHERE datallowconn ORDER BY 1"
            ).fetchall()
        ]
    failures = []
    for database in databases:
        with connect(cluster.url(database), purpose="drill") as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS amcheck")
            for (index,) in conn.execute(_BTREE_INDEXES).fetchall():
                drill.indexes_checked += 1
                try:
                    conn.execute("SELECT bt_index_check(%s::regclass, true)", [index])
                except Exception as exc:
                    failures.append(f"{database}.{index}: {str(exc).strip()}")
    drill.add(
        "amcheck on B-tree indexes",
        not failures,
        f"{drill.indexes_checked} indexes" if not failures else "; ".join(failures[:5]),
    )


def _source_heartbeat(url: str | None, database: str) -> Heartbeat | None:
    if url is None:
        return None
    from psycopg.conninfo import make_conninfo

    try:
        with connect(make_conninfo(url, dbname=database), purpose="drill") as conn:
            return newest_heartbeat(conn)
    except DbamgrError as exc:
        logger.warning("cannot read the source's heartbeat: %s", exc)
        return None


def run_drill(
    repo: Repository,
    binaries: PgBinaries,
    *,
    source_url: str | None = None,
    to_time: datetime | None = None,
    rpo_target: float | None = None,
    rto_target: float | None = None,
    run_as: str = "dbamgr",
    scratch_parent: Path | None = None,
    on_progress: ProgressCallback | None = None,
) -> DrillReport:
    """Run a restore drill (see the module's docstring)."""
    final_target = RestoreTarget(time=to_time)
    drill = DrillReport(
        backup=None,
        target=final_target.describe(),
        started_at=utcnow(),
        rto_target=rto_target,
        rpo_target=rpo_target,
    )
    began = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix="dbamgr-drill-", dir=scratch_parent))
    cluster: LocalCluster | None = None
    try:
        backup = choose_backup(repo, final_target)
        drill.backup = backup.id
        marker = backup.marker
        counting = to_time is None and marker is not None and bool(backup.row_counts)
        first = final_target
        if counting and marker is not None:
            first = RestoreTarget(xid=int(marker["xid"]))
        report(on_progress, f"restoring backup {backup.id}")
        restore_backup(
            repo,
            binaries,
            scratch / "data",
            first,
            backup_id=backup.id,
            run_as=run_as,
            extra_settings={} if counting else {"recovery_target_action": "promote"},
            on_progress=on_progress,
        )
        (scratch / "data" / "pg_hba.conf").write_text(_HBA)
        settings: dict[str, Any] = {"archive_mode": "off"}
        cluster = start_restored(
            scratch / "data",
            binaries,
            run_as=run_as,
            target=first,
            pause=counting,
            settings=settings,
            directory=scratch,
            on_progress=on_progress,
        )
        if counting:
            report(on_progress, "comparing row counts")
            _compare_counts(cluster, backup.row_counts, backup.counts_exact, drill)
            cluster.stop()
            with (scratch / "data" / "postgresql.auto.conf").open("a") as handle:
                handle.write(
                    "\n# dbamgr drill: go on to the end of the archive\n"
                    "recovery_target_xid = ''\n"
                )
            cluster = start_restored(
                scratch / "data",
                binaries,
                run_as=run_as,
                target=final_target,
                settings=settings,
                directory=scratch,
                on_progress=on_progress,
            )
        report(on_progress, "checking indexes")
        _amcheck(cluster, drill)
        drill.rto_seconds = round(time.monotonic() - began, 3)
        _measure_rpo(cluster, backup.marker, source_url, to_time, drill)
    except DbamgrError as exc:
        drill.add("restore", False, str(exc))
    finally:
        if cluster is not None:
            try:
                cluster.stop(mode="immediate")
            except DbamgrError as exc:
                logger.warning("could not stop the scratch cluster: %s", exc)
        shutil.rmtree(scratch, ignore_errors=True)
    _judge(drill)
    _save(repo, drill)
    return drill


def _measure_rpo(
    cluster: LocalCluster,
    marker: dict[str, Any] | None,
    source_url: str | None,
    to_time: datetime | None,
    drill: DrillReport,
) -> None:
    database = str(marker["database"]) if marker else "postgres"
    with connect(cluster.url(database), purpose="drill") as conn:
        restored = newest_heartbeat(conn)
    if restored is None:
        drill.add("heartbeat", False, f'no heartbeat row in database "{database}"')
        return
    drill.restored_heartbeat = restored.written_at
    if to_time is not None:
        moment = to_time if to_time.tzinfo else to_time.astimezone()
        drill.rpo_seconds = round(
            max((moment - restored.written_at).total_seconds(), 0), 3
        )
        drill.add(
            "heartbeat",
            True,
            f"newest recovered from {restored.written_at.isoformat()}",
        )
        return
    source = _source_heartbeat(source_url, database)
    if source is None:
        drill.add(
            "heartbeat",
            drill.rpo_target is None,
            "the source's heartbeat could not be read, so RPO is unknown",
        )
        return
    drill.source_heartbeat = source.written_at
    lag = (source.written_at - restored.written_at).total_seconds()
    drill.rpo_seconds = round(max(lag, 0.0), 3)
    drill.add(
        "heartbeat",
        True,
        f"newest recovered: {restored.id}, on the source: {source.id}",
    )


def _judge(drill: DrillReport) -> None:
    if drill.rto_target is not None and drill.rto_seconds is not None:
        drill.add(
            "RTO",
            drill.rto_seconds <= drill.rto_target,
            f"{drill.rto_seconds:.1f}s against a target of {drill.rto_target:g}s",
        )
    if drill.rpo_target is not None and drill.rpo_seconds is not None:
        drill.add(
            "RPO",
            drill.rpo_seconds <= drill.rpo_target,
            f"{drill.rpo_seconds:.1f}s against a target of {drill.rpo_target:g}s",
        )


def _save(repo: Repository, drill: DrillReport) -> None:
    import json
    from dataclasses import asdict

    data = asdict(drill) | {"ok": drill.ok}
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    try:
        repo.storage.write_bytes(
            f"drills/{stamp}.json",
            (json.dumps(data, default=str, indent=2) + "\n").encode(),
        )
    except (OSError, BackupError) as exc:
        logger.warning("could not store the drill report: %s", exc)
