"""``dbamgr archive enable|status``: WAL archiving into the repository.

archive_command and restore_command run as the server's user, so they call this
very Python by its absolute path (``python -m dbamgr wal push …``), and the
directories on the way to it are made searchable by that user when dbamgr runs
as root.
"""

from __future__ import annotations

import logging
import shlex
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from psycopg import sql

import dbamgr
from dbamgr.backup.repository import Repository
from dbamgr.backup.wal import index_wal
from dbamgr.backup.walnames import parse_segment, parse_size
from dbamgr.db.connect import connect
from dbamgr.log import mask_url
from dbamgr.server.cluster import LocalCluster
from dbamgr.server.process import RunAs, grant_search

logger = logging.getLogger(__name__)

SUMMARIZE_WAL_MAJOR = 17


def python_command() -> str:
    """This Python, started as ``python -m dbamgr``, quoted for a shell."""
    return f"{shlex.quote(sys.executable)} -m dbamgr"


def archive_command(repository: Path, compression: str = "none") -> str:
    """The archive_command that pushes WAL into *repository*."""
    command = f"{python_command()} wal push --repo {shlex.quote(str(repository))}"
    if compression != "none":
        command += f" --compress {compression}"
    return command + " %p %f"


def restore_command(repository: Path) -> str:
    """The restore_command that fetches WAL from *repository*."""
    return f"{python_command()} wal fetch --repo {shlex.quote(str(repository))} %f %p"


def grant_program_access(user: RunAs | None) -> None:
    """Let the server's user run this Python and import dbamgr (as root)."""
    if user is None:
        return
    import zstandard

    for path in (
        Path(sys.executable),
        Path(sys.executable).resolve(),
        Path(dbamgr.__file__),
        Path(zstandard.__file__),
    ):
        grant_search(path, user)


def archive_settings(
    repository: Path, *, compression: str, timeout: float, major: int
) -> dict[str, str]:
    """The server settings that archive WAL into *repository*."""
    settings = {
        "wal_level": "replica",
        "archive_mode": "on",
        "archive_command": archive_command(repository, compression),
        "archive_timeout": f"{max(int(timeout), 0)}s",
    }
    if major >= SUMMARIZE_WAL_MAJOR:
        settings["summarize_wal"] = "on"
    return settings


@dataclass
class ArchiveSetup:
    """What ``archive enable`` did, or what to set by hand on a remote server."""

    target: str
    repository: str
    settings: dict[str, str]
    applied: bool
    restarted: bool = False


def enable_archiving(
    url: str,
    repository: Path,
    *,
    cluster: LocalCluster | None,
    compression: str = "none",
    timeout: float = 60.0,
) -> ArchiveSetup:
    """Configure the local *cluster* to archive into *repository* (ALTER SYSTEM,
    then a restart if archive_mode changed); with no local cluster, only work
    out the settings for the user to apply."""
    with connect(url, purpose="archive") as conn:
        row = conn.execute("SHOW server_version_num").fetchone()
        major = int(row[0]) // 10000 if row else 0
        settings = archive_settings(
            repository, compression=compression, timeout=timeout, major=major
        )
        setup = ArchiveSetup(mask_url(url), str(repository), settings, applied=False)
        if cluster is None:
            return setup
        grant_program_access(cluster.user)
        for name, value in settings.items():
            conn.execute(
                sql.SQL("ALTER SYSTEM SET {} = {}").format(
                    sql.Identifier(name), sql.Literal(value)
                )
            )
        conn.execute("SELECT pg_reload_conf()")
        conn.execute("SELECT pg_sleep(0.2)")
        pending = conn.execute(
            "SELECT count(*) FROM pg_settings WHERE pending_restart"
        ).fetchone()
    setup.applied = True
    if pending and pending[0]:
        logger.info("restarting the server so that archive_mode takes effect")
        cluster.stop()
        cluster.start()
        setup.restarted = True
    return setup


@dataclass
class ArchiveStatus:
    """pg_stat_archiver, the current WAL file and the repository, side by side."""

    target: str
    archive_mode: str
    archive_command: str
    archived_count: int
    last_archived_wal: str | None
    last_archived_time: datetime | None
    failed_count: int
    last_failed_wal: str | None
    last_failed_time: datetime | None
    current_wal: str | None
    ready_files: int | None
    lag_segments: int | None
    lag_seconds: float | None
    repository_newest: str | None
    problems: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.problems


def _lag(current: str | None, archived: str | None, size: int) -> int | None:
    if current is None or archived is None:
        return None
    now, then = parse_segment(current, size), parse_segment(archived, size)
    if now is None or then is None or now.tli != then.tli:
        return None
    return max(now.segno - then.segno - 1, 0)


def archive_status(url: str, repo: Repository | None) -> ArchiveStatus:
    """Read the archiver's state on the server at *url* and compare it with the
    repository's newest segment."""
    with connect(url, purpose="archive") as conn:
        row: Any = conn.execute(
            "SELECT current_setting('archive_mode'),"
            " current_setting('archive_command'),"
            " archived_count, last_archived_wal, last_archived_time, failed_count,"
            " last_failed_wal, last_failed_time,"
            " CASE WHEN pg_is_in_recovery() THEN NULL"
            "  ELSE pg_walfile_name(pg_current_wal_lsn()) END,"
            " current_setting('wal_segment_size')"
            " FROM pg_stat_archiver"
        ).fetchone()
        try:
            ready_row = conn.execute(
                "SELECT count(*) FROM pg_ls_archive_statusdir()"
                " WHERE name LIKE '%.ready'"
            ).fetchone()
            ready = int(ready_row[0]) if ready_row else None
        except Exception:  # needs pg_monitor or superuser
            ready = None
    size = parse_size(str(row[9]))
    status = ArchiveStatus(
        target=mask_url(url),
        archive_mode=row[0],
        archive_command=row[1],
        archived_count=int(row[2]),
        last_archived_wal=row[3],
        last_archived_time=row[4],
        failed_count=int(row[5]),
        last_failed_wal=row[6],
        last_failed_time=row[7],
        current_wal=row[8],
        ready_files=ready,
        lag_segments=_lag(row[8], row[3], size),
        lag_seconds=((datetime.now(UTC) - row[4]).total_seconds() if row[4] else None),
        repository_newest=None,
    )
    if repo is not None:
        index = index_wal(repo, size)
        newest = [(tli, max(segs)) for tli, segs in index.segments.items() if segs]
        if newest:
            from dbamgr.backup.walnames import segment_name

            tli, segno = max(newest)
            status.repository_newest = segment_name(tli, segno, size)
    _diagnose(status)
    return status


def _diagnose(status: ArchiveStatus) -> None:
    if status.archive_mode == "off":
        status.problems.append("archive_mode is off: run `dbamgr archive enable`")
        return
    failing = status.last_failed_time is not None and (
        status.last_archived_time is None
        or status.last_failed_time > status.last_archived_time
    )
    if failing:
        status.problems.append(
            f'archiving fails: the last attempt, for "{status.last_failed_wal}", '
            "failed; see the server log for archive_command's message"
        )
    if status.ready_files is not None and status.ready_files > 10:
        status.problems.append(f"{status.ready_files} WAL files wait to be archived")
    if (
        status.repository_newest is not None
        and status.last_archived_wal is not None
        and status.last_archived_wal.split(".")[0] > status.repository_newest
    ):
        status.problems.append(
            f'the server archived "{status.last_archived_wal}" but the repository\'s '
            f'newest segment is "{status.repository_newest}": archive_command may '
            "write somewhere else"
        )
