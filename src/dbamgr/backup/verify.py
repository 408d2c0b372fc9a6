"""``dbamgr backup verify``: are the backups whole, and is their WAL complete?

Each stored file is checked against the size and SHA-256 recorded in the catalog,
the contents of a base backup against its manifest (pg_verifybackup where it
reads tar files), a logical dump's table of contents with pg_restore, and the
WAL from each base backup's start to the newest archived segment for gaps.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field

from dbamgr.backup.errors import BackupError
from dbamgr.backup.manifest import verify_files
from dbamgr.backup.progress import ProgressCallback, report, run_program
from dbamgr.backup.repository import BackupInfo, Repository
from dbamgr.backup.wal import ChainReport, WalIndex, check_chain, index_wal
from dbamgr.backup.walnames import parse_lsn
from dbamgr.server.binaries import PgBinaries

logger = logging.getLogger(__name__)


@dataclass
class BackupCheck:
    """The verdict on one backup."""

    id: str
    kind: str
    problems: list[str] = field(default_factory=list)
    wal: ChainReport | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class VerifyReport:
    """The verdict on the backups verified."""

    repository: str
    backups: list[BackupCheck]

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.backups)


def _check_stored_files(repo: Repository, info: BackupInfo) -> list[str]:
    problems = []
    prefix = repo.data_prefix(info.id)
    for name, expected in sorted(info.files.items()):
        key = f"{prefix}/{name}"
        if not repo.storage.exists(key):
            problems.append(f'file "{name}" is missing')
            continue
        digest = hashlib.sha256()
        size = 0
        with repo.storage.open(key) as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
        if size != int(expected["size"]):
            problems.append(
                f'file "{name}" has {size} bytes, {expected["size"]} recorded'
            )
        elif digest.hexdigest() != expected["sha256"]:
            problems.append(f'file "{name}" does not match its recorded checksum')
    return problems


def verify_backup(
    repo: Repository,
    info: BackupInfo,
    binaries: PgBinaries,
    *,
    index: WalIndex | None = None,
    on_progress: ProgressCallback | None = None,
) -> BackupCheck:
    """Check one backup (see the module's docstring)."""
    check = BackupCheck(info.id, info.kind)
    if not info.complete:
        check.problems.append(f"the backup is {info.status}, not complete")
        return check
    report(on_progress, f"checking the files of {info.id}")
    check.problems += _check_stored_files(repo, info)
    directory = repo.data_dir(info.id)
    if info.physical:
        if info.parent is not None:
            try:
                parent = repo.get(info.parent)
                if not parent.complete:
                    check.problems.append(f'its parent "{info.parent}" is not complete')
            except BackupError:
                check.problems.append(f'its parent "{info.parent}" is missing')
        if info.pg_major != binaries.major:
            check.problems.append(
                f"cannot check its manifest with PostgreSQL {binaries.version} "
                f"programs: it is of PostgreSQL {info.pg_version}"
            )
        elif not check.problems:
            check.problems += verify_files(directory, binaries, on_progress=on_progress)
        size = info.segment_size or 16 * 1024 * 1024
        report(on_progress, f"checking the WAL of {info.id}")
        check.wal = check_chain(
            repo,
            tli=info.timeline or 1,
            start_lsn=parse_lsn(info.start_lsn or "0/0"),
            stop_lsn=parse_lsn(info.stop_lsn or "0/0"),
            segment_size=size,
            index=index if index is not None and index.segment_size == size else None,
        )
        if check.wal.missing:
            shown = ", ".join(check.wal.missing[:5])
            more = len(check.wal.missing) - 5
            check.problems.append(
                f"the WAL chain has gaps: {shown}"
                + (f" and {more} more" if more > 0 else "")
            )
    else:
        for database in info.databases:
            try:
                run_program(
                    [binaries.path("pg_restore"), "--list", directory / database],
                    step="reading dumps",
                )
            except BackupError as exc:
                check.problems.append(
                    f'the dump of "{database}" is unreadable: {exc.message}'
                )
    return check


def verify(
    repo: Repository,
    binaries: PgBinaries,
    backup_id: str | None = None,
    *,
    on_progress: ProgressCallback | None = None,
) -> VerifyReport:
    """Verify one backup, or every backup in the repository."""
    backups = [repo.get(backup_id)] if backup_id else repo.backups()
    sizes = {b.segment_size for b in backups if b.physical and b.segment_size}
    index = index_wal(repo, sizes.pop()) if len(sizes) == 1 else None
    checks = []
    for number, info in enumerate(backups, 1):
        report(on_progress, "verifying backups", number - 1, len(backups))
        checks.append(
            verify_backup(repo, info, binaries, index=index, on_progress=on_progress)
        )
    report(on_progress, "verifying backups", len(backups), len(backups))
    return VerifyReport(repo.storage.location, checks)
