"""Starting a restored data directory and following its recovery.

The restored cluster runs on a free port on 127.0.0.1, with its log and state
in a directory beside the data (``DIR.dbamgr``). dbamgr waits until recovery
reaches its target (promoted, or paused there) and turns a recovery that ends
early into an error that quotes PostgreSQL's reason.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from dbamgr.backup.errors import BackupError
from dbamgr.backup.progress import ProgressCallback, report
from dbamgr.backup.target import RestoreTarget
from dbamgr.db.connect import connect
from dbamgr.server.binaries import PgBinaries
from dbamgr.server.cluster import LocalCluster, SettingValue

logger = logging.getLogger(__name__)

_POLL = 0.2


def run_directory(target_dir: Path) -> Path:
    """Where a started restored cluster keeps its log and state: beside it."""
    return target_dir.with_name(f"{target_dir.name}.dbamgr")


_SHORT = (
    "recovery ended before configured recovery target was reached",
    "requested recovery stop point is before consistent recovery point",
)


def start_restored(
    data_dir: Path,
    binaries: PgBinaries,
    *,
    run_as: str,
    target: RestoreTarget,
    pause: bool = False,
    timeout: float = 3600.0,
    settings: dict[str, SettingValue] | None = None,
    directory: Path | None = None,
    on_progress: ProgressCallback | None = None,
) -> LocalCluster:
    """Start a restored data directory on a free port and wait until recovery
    reaches its target: promoted, or paused there if *pause*."""
    cluster = LocalCluster(
        directory or run_directory(data_dir),
        binaries=binaries,
        run_as=run_as,
        data_dir=data_dir,
        settings={"hot_standby": True, **(settings or {})},
    )
    cluster.adopt()
    report(on_progress, "starting the restored cluster")
    try:
        cluster.start(timeout=timeout)
    except Exception as exc:
        raise _recovery_error(cluster, target) from exc
    report(on_progress, f"recovering to {target.describe()}")
    deadline = time.monotonic() + timeout
    while True:
        if cluster.status().pid is None:
            raise _recovery_error(cluster, target)
        state = _recovery_state(cluster)
        if state == "promoted" or (pause and state == "paused"):
            return cluster
        if time.monotonic() > deadline:
            cluster.stop(mode="immediate")
            raise BackupError(
                f"recovery did not reach {target.describe()} within {timeout:.0f}s",
                hint=f"see {cluster.log_file}",
            )
        time.sleep(_POLL)


def _recovery_state(cluster: LocalCluster) -> str:
    port = cluster.port
    if port is None:
        return "starting"
    try:
        with connect(cluster.url(), purpose="restore", connect_timeout=2) as conn:
            row = conn.execute(
                "SELECT pg_is_in_recovery(),"
                " pg_is_in_recovery() AND pg_is_wal_replay_paused()"
            ).fetchone()
    except Exception:
        return "starting"
    if row is None:
        return "starting"
    if not row[0]:
        return "promoted"
    return "paused" if row[1] else "recovering"


def _recovery_error(cluster: LocalCluster, target: RestoreTarget) -> BackupError:
    log = cluster.read_log_tail(40)
    if any(text in log for text in _SHORT):
        return BackupError(
            f"the archived WAL does not reach {target.describe()}: recovery ended "
            "before it",
            hint="choose an earlier target, or wait until the WAL is archived "
            "(`dbamgr archive status`)",
            log=log.splitlines()[-5:],
        )
    fatal = [
        line.split("FATAL:", 1)[1].strip()
        for line in log.splitlines()
        if "FATAL:" in line
    ]
    reason = f": {fatal[-1]}" if fatal else ""
    return BackupError(
        f"the restored cluster stopped during recovery{reason}",
        hint=f"its log ends with:\n{log}",
    )
