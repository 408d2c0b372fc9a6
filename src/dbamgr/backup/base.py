"""``dbamgr backup base``: physical base backups with pg_basebackup.

The backup is written in tar format, compressed by pg_basebackup, with its WAL
streamed alongside (so it is consistent on its own) and a manifest. It is
recorded as complete only after its files are fsynced, checked against the
manifest, and the WAL from its start to its marker is in the archive; until then
its catalog document says ``running``, and a failure removes both.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from dbamgr.backup.compress import choose_compression
from dbamgr.backup.errors import BackupError
from dbamgr.backup.heartbeat import write_marker
from dbamgr.backup.manifest import (
    MANIFEST,
    PG_VERIFYBACKUP_TAR_MAJOR,
    file_checksums,
    read_manifest,
    verify_files,
)
from dbamgr.backup.progress import (
    ProgressCallback,
    connection_options,
    report,
    run_program,
)
from dbamgr.backup.repository import (
    KIND_FULL,
    KIND_INCREMENTAL,
    STATUS_COMPLETE,
    STATUS_RUNNING,
    BackupInfo,
    Repository,
    utcnow,
)
from dbamgr.backup.wal import index_wal
from dbamgr.backup.walnames import (
    format_lsn,
    last_segment_of,
    parse_lsn,
    parse_size,
    segment_name,
    segment_of,
)
from dbamgr.db.connect import connect
from dbamgr.log import mask_url
from dbamgr.server.binaries import PgBinaries

logger = logging.getLogger(__name__)

INCREMENTAL_MAJOR = 17
_POLL = 0.2


@dataclass(frozen=True)
class ServerFacts:
    """What a backup needs to know about the server it copies."""

    major: int
    version: str
    system_identifier: str
    segment_size: int
    archive_mode: str
    archive_command: str
    in_recovery: bool
    summarize_wal: bool


def server_facts(url: str) -> ServerFacts:
    """Read version, identity and archiving settings of the server at *url*."""
    with connect(url, purpose="backup") as conn:
        row = conn.execute(
            "SELECT current_setting('server_version_num')::int,"
            " current_setting('server_version'),"
            " (SELECT system_identifier::text FROM pg_control_system()),"
            " current_setting('wal_segment_size'),"
            " current_setting('archive_mode'),"
            " current_setting('archive_command'),"
            " pg_is_in_recovery(),"
            " coalesce(current_setting('summarize_wal', true), 'off')"
        ).fetchone()
    assert row is not None
    segment_size = parse_size(str(row[3]))
    return ServerFacts(
        major=int(row[0]) // 10000,
        version=str(row[1]).split()[0],
        system_identifier=str(row[2]),
        segment_size=segment_size,
        archive_mode=str(row[4]),
        archive_command=str(row[5]),
        in_recovery=bool(row[6]),
        summarize_wal=row[7] == "on",
    )


def _check_server(facts: ServerFacts, binaries: PgBinaries, url: str) -> None:
    if facts.major != binaries.major:
        raise BackupError(
            f"the server at {mask_url(url)} runs PostgreSQL {facts.version}, but the "
            f"programs in {binaries.bin_dir} are PostgreSQL {binaries.version}",
            hint=f"set [server] bin_dir (or DBAMGR_PG_BIN_DIR) to a PostgreSQL "
            f"{facts.major} installation",
        )
    if facts.archive_mode == "off":
        raise BackupError(
            f"WAL archiving is off on {mask_url(url)}: a base backup without its "
            "WAL cannot be restored to a point in time",
            hint="run `dbamgr archive enable` (it prints the settings for a remote "
            "server)",
        )


def _parent_for_incremental(repo: Repository, facts: ServerFacts) -> BackupInfo:
    if facts.major < INCREMENTAL_MAJOR:
        raise BackupError(
            f"incremental backups need PostgreSQL {INCREMENTAL_MAJOR} or later; "
            f"the server runs {facts.version}",
            hint="take a full backup (without --incremental)",
        )
    if not facts.summarize_wal:
        raise BackupError(
            "incremental backups need summarize_wal = on on the server",
            hint="run `dbamgr archive enable` again, or set summarize_wal = on",
        )
    candidates = [
        b
        for b in repo.complete_backups(physical=True)
        if b.system_identifier == facts.system_identifier
    ]
    if not candidates:
        raise BackupError(
            "there is no complete base backup to build an incremental one on",
            hint="take a full backup first: dbamgr backup base",
        )
    return candidates[-1]


def wait_for_wal(
    repo: Repository,
    *,
    tli: int,
    start_lsn: int,
    end_lsn: int,
    segment_size: int,
    timeout: float,
) -> None:
    """Wait until every segment from *start_lsn* to *end_lsn* is archived."""
    first = segment_of(start_lsn, segment_size)
    last = last_segment_of(end_lsn, segment_size)
    deadline = time.monotonic() + timeout
    while True:
        have = index_wal(repo, segment_size).segments.get(tli, set())
        missing = [s for s in range(first, last + 1) if s not in have]
        if not missing:
            return
        if time.monotonic() > deadline:
            name = segment_name(tli, missing[0], segment_size)
            raise BackupError(
                f'WAL segment "{name}" did not reach the archive within '
                f"{timeout:.0f}s, so the backup cannot be restored",
                hint="check `dbamgr archive status` and the server log for "
                "archive_command failures; raise [backup] archive_wait if it is slow",
                segment=name,
            )
        time.sleep(_POLL)


def take_base_backup(
    repo: Repository,
    url: str,
    binaries: PgBinaries,
    *,
    incremental: bool = False,
    compression: str = "auto",
    level: int | None = None,
    archive_wait: float = 120.0,
    row_counts: bool = True,
    on_progress: ProgressCallback | None = None,
) -> BackupInfo:
    """Take a base backup of the server at *url* into *repo* (see the module)."""
    began = time.monotonic()
    facts = server_facts(url)
    _check_server(facts, binaries, url)
    repo.check_system(facts.system_identifier)
    method = choose_compression(binaries, compression)

    with repo.locked("backup"):
        parent = _parent_for_incremental(repo, facts) if incremental else None
        kind = KIND_INCREMENTAL if incremental else KIND_FULL
        info = BackupInfo(
            id=repo.new_id(kind),
            kind=kind,
            status=STATUS_RUNNING,
            start_time=utcnow(),
            system_identifier=facts.system_identifier,
            pg_version=facts.version,
            pg_major=facts.major,
            segment_size=facts.segment_size,
            parent=parent.id if parent else None,
            compression=method,
            source=mask_url(url),
        )
        repo.save(info)
        logger.info("taking %s backup %s of %s", kind, info.id, mask_url(url))
        try:
            with repo.storage.staging(repo.data_prefix(info.id)) as work:
                _run_basebackup(
                    repo,
                    info,
                    parent,
                    url,
                    binaries,
                    method=method,
                    level=level,
                    work=work,
                    on_progress=on_progress,
                )
                _describe(info, work)
                report(on_progress, "verifying files")
                problems = verify_files(work, binaries, on_progress=on_progress)
                if problems:
                    raise BackupError(
                        f"backup {info.id} does not match its manifest: "
                        + "; ".join(problems[:5]),
                        hint="the copy was damaged while written: take it again",
                    )
                end_lsn = parse_lsn(info.stop_lsn or "0/0")
                if not facts.in_recovery:
                    report(on_progress, "writing the backup marker")
                    marker = write_marker(
                        url, f"backup {info.id}", with_counts=row_counts
                    )
                    info.marker = {
                        "xid": marker.xid,
                        "lsn": marker.lsn,
                        "written_at": marker.written_at.isoformat(),
                        "database": marker.database,
                    }
                    info.row_counts = {marker.database: marker.counts}
                    info.counts_exact = marker.exact
                    end_lsn = max(end_lsn, parse_lsn(marker.lsn))
                    with connect(url, purpose="backup") as conn:
                        conn.execute("SELECT pg_switch_wal()")
                report(on_progress, "waiting for the WAL to be archived")
                wait_for_wal(
                    repo,
                    tli=info.timeline or 1,
                    start_lsn=parse_lsn(info.start_lsn or "0/0"),
                    end_lsn=end_lsn,
                    segment_size=facts.segment_size,
                    timeout=archive_wait,
                )
                info.files = file_checksums(work)
                info.size = sum(int(f["size"]) for f in info.files.values())
        except BaseException:
            repo.storage.remove(f"catalog/{info.id}.json")
            raise
        info.status = STATUS_COMPLETE
        info.seconds = round(time.monotonic() - began, 3)
        repo.save(info)
    logger.info("backup %s complete", info.id)
    return info


def _run_basebackup(
    repo: Repository,
    info: BackupInfo,
    parent: BackupInfo | None,
    url: str,
    binaries: PgBinaries,
    *,
    method: str,
    level: int | None,
    work: Path,
    on_progress: ProgressCallback | None,
) -> None:
    dsn, env = connection_options(url)
    spec = f"client-{method}" if method != "none" else "none"
    if level is not None and method != "none":
        spec += f":{level}"
    args: list[str | Path] = [
        binaries.path("pg_basebackup"),
        "--pgdata",
        work,
        "--format=tar",
        "--wal-method=stream",
        "--checkpoint=fast",
        f"--compress={spec}",
        f"--label=dbamgr {info.id}",
        "--progress",
        "--no-password",
        f"--dbname={dsn}",
    ]
    if binaries.major < PG_VERIFYBACKUP_TAR_MAJOR:
        args.append("--manifest-checksums=SHA256")
    if parent is not None:
        args.append(f"--incremental={repo.data_dir(parent.id) / MANIFEST}")
    report(on_progress, "copying files")
    run_program(args, step="copying files", on_progress=on_progress, env=env)


def _describe(info: BackupInfo, work: Path) -> None:
    """Fill the catalog document from the manifest and backup_label."""
    manifest = read_manifest(work / MANIFEST)
    if not manifest.wal_ranges:
        raise BackupError(f"the manifest of backup {info.id} lists no WAL range")
    first, last = manifest.wal_ranges[0], manifest.wal_ranges[-1]
    info.timeline = last.tli
    info.start_lsn = format_lsn(first.start_lsn)
    info.stop_lsn = format_lsn(last.end_lsn)
    info.data_size = manifest.total_size
    info.stop_time = utcnow()
