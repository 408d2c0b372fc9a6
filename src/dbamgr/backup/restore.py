"""``dbamgr restore``: a base backup plus archived WAL, up to a chosen point.

The newest backup that ends before the target is restored (incremental chains
combined with pg_combinebackup), then recovery.signal and the recovery settings
are written. Before any file is written, the archive is checked: a gap in the
WAL or a target past the archive's end is an error, never a silently earlier
state. With ``start``, the restored cluster runs on a free port until the target
is reached and is promoted; if recovery ends short of the target, the restore
fails and the target directory is emptied again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dbamgr.backup.archive import (
    archive_command,
    grant_program_access,
    restore_command,
)
from dbamgr.backup.compress import extract_tar
from dbamgr.backup.errors import BackupError, BackupNotFound
from dbamgr.backup.manifest import MANIFEST, tar_files
from dbamgr.backup.progress import ProgressCallback, report, run_program
from dbamgr.backup.recovery import run_directory, start_restored
from dbamgr.backup.repository import BackupInfo, Repository
from dbamgr.backup.storage import fsync_tree
from dbamgr.backup.target import RestoreTarget
from dbamgr.backup.wal import ChainReport, check_chain, index_wal
from dbamgr.backup.walnames import format_lsn, parse_lsn, parse_segment, segment_of
from dbamgr.server.binaries import PgBinaries
from dbamgr.server.cluster import LocalCluster
from dbamgr.server.process import RunAs, chown, service_user

logger = logging.getLogger(__name__)

_POLL = 0.2


@dataclass
class RestoreReport:
    """What a restore did."""

    backup: str
    chain: list[str]
    target: str
    target_dir: str
    timeline: int
    settings: dict[str, str]
    started: bool = False
    url: str | None = None
    port: int | None = None
    log_file: str | None = None
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.astimezone()


def choose_backup(
    repo: Repository, target: RestoreTarget, backup_id: str | None = None
) -> BackupInfo:
    """The newest complete physical backup that ends before *target*."""
    if backup_id is not None:
        chosen = repo.get(backup_id)
        if not (chosen.complete and chosen.physical):
            raise BackupError(
                f'backup "{chosen.id}" is {chosen.status} {chosen.kind}: only a '
                "complete base backup can be restored this way",
                hint="for a logical backup use `dbamgr restore logical`",
            )
        candidates = [chosen]
    else:
        candidates = repo.complete_backups(physical=True)
    limit_lsn: int | None = None
    limit_time: datetime | None = None
    if target.time is not None:
        limit_time = _aware(target.time)
    elif target.lsn is not None:
        limit_lsn = parse_lsn(target.lsn)
    elif target.name is not None:
        point = repo.restore_point(target.name)
        if point is None and backup_id is None:
            raise BackupNotFound(
                f'restore point "{target.name}" was not made by `dbamgr '
                "restore-point`, so dbamgr cannot tell which backup precedes it",
                hint="name the backup to start from with --backup ID",
            )
        if point is not None:
            limit_lsn = parse_lsn(point.lsn)
    fitting = [
        b
        for b in candidates
        if (limit_time is None or (b.stop_time and b.stop_time <= limit_time))
        and (limit_lsn is None or parse_lsn(b.stop_lsn or "0/0") <= limit_lsn)
    ]
    if not fitting:
        if backup_id is not None:
            raise BackupError(
                f'backup "{backup_id}" ends after {target.describe()}',
                hint="choose an older backup, or omit --backup",
            )
        oldest = candidates[0].stop_time if candidates else None
        raise BackupNotFound(
            f"no base backup ends before {target.describe()}"
            + (f"; the oldest ends at {oldest.isoformat()}" if oldest else ""),
            hint="take backups with `dbamgr backup base`; a restore starts from "
            "one that ended before the target",
        )
    return fitting[-1]


def check_reachable(
    repo: Repository, backup: BackupInfo, target: RestoreTarget
) -> ChainReport:
    """Refuse a target that the archived WAL cannot reach."""
    size = backup.segment_size or 16 * 1024 * 1024
    index = index_wal(repo, size)
    chain = check_chain(
        repo,
        tli=backup.timeline or 1,
        start_lsn=parse_lsn(backup.start_lsn or "0/0"),
        stop_lsn=parse_lsn(backup.stop_lsn or "0/0"),
        segment_size=size,
        index=index,
    )
    if chain.missing:
        first_gap = chain.missing[0]
        gap = parse_segment(first_gap, size)
        before_gap = (
            target.lsn is not None
            and gap is not None
            and segment_of(parse_lsn(target.lsn), size) < gap.segno
        )
        if not before_gap:
            raise BackupError(
                f'WAL file "{first_gap}" is missing from the archive, so '
                f"{target.describe()} cannot be reached from backup {backup.id}",
                hint="run `dbamgr backup verify`; restore to an LSN before the gap, "
                "or from a newer backup",
                missing=chain.missing[:20],
            )
    newest = index.newest(chain.timeline)
    if target.lsn is not None and newest is not None:
        archive_end = (newest + 1) * size
        if parse_lsn(target.lsn) > archive_end:
            raise BackupError(
                f"LSN {target.lsn} is past the end of the archived WAL "
                f"({format_lsn(archive_end)})",
                hint="wait for the WAL to be archived (`dbamgr archive status`), or "
                "choose an earlier LSN",
            )
    if target.time is not None:
        moment = _aware(target.time)
        if moment > datetime.now(UTC):
            raise BackupError(
                f"{target.describe()} is in the future", hint="choose a past moment"
            )
        key = index.keys.get(chain.last_segment or "")
        local = repo.storage.local_path(key) if key else None
        if local is not None and local.exists():
            archived_at = datetime.fromtimestamp(local.stat().st_mtime, UTC)
            if moment > archived_at:
                raise BackupError(
                    f"{target.describe()} is after the newest archived WAL "
                    f"(archived at {archived_at.isoformat()})",
                    hint="the WAL written since is not archived yet: wait for "
                    "archive_timeout, or run `dbamgr archive status`",
                )
    return chain


def _check_target_dir(target_dir: Path) -> bool:
    """Refuse a running cluster's or a non-empty directory; True if it exists."""
    if not target_dir.exists():
        return False
    if not target_dir.is_dir():
        raise BackupError(f"{target_dir} is not a directory")
    pid_file = target_dir / "postmaster.pid"
    if pid_file.exists():
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int(pid_file.read_text().splitlines()[0])
            with contextlib.suppress(PermissionError):
                os.kill(pid, 0)
            raise BackupError(
                f"{target_dir} is the data directory of a running PostgreSQL "
                f"(pid {pid})",
                hint="restore into another, empty directory",
            )
    if any(target_dir.iterdir()):
        raise BackupError(
            f"{target_dir} is not empty: a restore never writes over files",
            hint="give an empty or new directory with --target-dir",
        )
    return True


def _extract_backup(
    repo: Repository,
    backup: BackupInfo,
    destination: Path,
    owner: tuple[int, int] | None,
    on_bytes: Any,
    *,
    with_wal: bool = True,
) -> None:
    source = repo.data_dir(backup.id)
    for tar_path in tar_files(source):
        stem = tar_path.name.split(".tar", 1)[0]
        if stem == "base":
            extract_tar(
                tar_path,
                destination,
                owner=owner,
                on_bytes=on_bytes,
                skip=lambda m: (
                    m.name.removeprefix("./").startswith("pg_tblspc/") and m.issym()
                ),
            )
        elif stem == "pg_wal":
            if with_wal:
                wal_dir = destination / "pg_wal"
                wal_dir.mkdir(mode=0o700, exist_ok=True)
                extract_tar(tar_path, wal_dir, owner=owner)
        else:
            space = destination / "pg_tblspc" / stem
            space.mkdir(mode=0o700, parents=True, exist_ok=True)
            extract_tar(tar_path, space, owner=owner, on_bytes=on_bytes)


def materialize(
    repo: Repository,
    chain: list[BackupInfo],
    target_dir: Path,
    binaries: PgBinaries,
    *,
    user: RunAs | None,
    on_progress: ProgressCallback | None = None,
) -> None:
    """Write the files of a backup chain into the empty *target_dir*."""
    owner = (user.uid, user.gid) if user else None
    total_kb = sum(b.data_size for b in chain) // 1024
    done = [0]

    def on_bytes(size: int) -> None:
        done[0] += size
        report(on_progress, "restoring files", done[0] // 1024, total_kb)

    if len(chain) == 1:
        _extract_backup(repo, chain[0], target_dir, owner, on_bytes)
        return
    work = target_dir.parent / f".{target_dir.name}.dbamgr-combine"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(mode=0o700)
    try:
        parts = []
        for backup in chain:
            part = work / backup.id
            part.mkdir(mode=0o700)
            _extract_backup(repo, backup, part, None, on_bytes, with_wal=False)
            shutil.copyfile(repo.data_dir(backup.id) / MANIFEST, part / MANIFEST)
            parts.append(part)
        report(on_progress, "combining incremental backups")
        run_program(
            [binaries.path("pg_combinebackup"), "--no-sync", *parts, "-o", target_dir],
            step="combining incremental backups",
        )
        wal_tar = [
            p
            for p in tar_files(repo.data_dir(chain[-1].id))
            if p.name.startswith("pg_wal")
        ]
        for tar_path in wal_tar:
            (target_dir / "pg_wal").mkdir(mode=0o700, exist_ok=True)
            extract_tar(tar_path, target_dir / "pg_wal", owner=owner)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if owner is not None:
        for directory, _dirs, files in os.walk(target_dir):
            os.chown(directory, *owner)
            for name in files:
                os.chown(os.path.join(directory, name), *owner)


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def write_recovery_settings(
    target_dir: Path, settings: dict[str, str], *, note: str, user: RunAs | None
) -> None:
    """Append the recovery settings to postgresql.auto.conf (read last, so they
    win) and create recovery.signal."""
    auto = target_dir / "postgresql.auto.conf"
    lines = [f"\n# {note}"] + [f"{k} = {_quote(v)}" for k, v in settings.items()]
    with auto.open("a") as handle:
        handle.write("\n".join(lines) + "\n")
    signal = target_dir / "recovery.signal"
    signal.touch(mode=0o600)
    for path in (auto, signal):
        chown(path, user)


def restore_backup(
    repo: Repository,
    binaries: PgBinaries,
    target_dir: Path,
    target: RestoreTarget,
    *,
    backup_id: str | None = None,
    start: bool = False,
    keep_archiving: bool = False,
    run_as: str = "dbamgr",
    pause: bool = False,
    extra_settings: dict[str, str] | None = None,
    wait_timeout: float = 3600.0,
    on_progress: ProgressCallback | None = None,
) -> tuple[RestoreReport, LocalCluster | None]:
    """Restore into *target_dir* (see the module's docstring). With *start*,
    return the running, promoted cluster too (paused at the target if *pause*)."""
    began = time.monotonic()
    target_dir = Path(target_dir).absolute()
    existed = _check_target_dir(target_dir)
    backup = choose_backup(repo, target, backup_id)
    if backup.pg_major != binaries.major:
        raise BackupError(
            f"backup {backup.id} is of PostgreSQL {backup.pg_version}, but the "
            f"programs in {binaries.bin_dir} are PostgreSQL {binaries.version}",
            hint=f"set DBAMGR_PG_BIN_DIR or [server] bin_dir to PostgreSQL "
            f"{backup.pg_major}",
        )
    chain_report = check_reachable(repo, backup, target)
    chain = repo.chain(backup)
    user = service_user(run_as)
    repo_path = repo.path or Path(repo.storage.location)
    settings = {
        "restore_command": restore_command(repo_path),
        "recovery_target_timeline": str(chain_report.timeline),
        **target.settings(),
    }
    if not target.latest:
        settings["recovery_target_action"] = (
            "pause" if (pause or not start) else "promote"
        )
    if keep_archiving:
        settings["archive_mode"] = "on"
        settings["archive_command"] = archive_command(repo_path)
    else:
        settings["archive_mode"] = "off"
    settings |= extra_settings or {}
    result = RestoreReport(
        backup=backup.id,
        chain=[b.id for b in chain],
        target=target.describe(),
        target_dir=str(target_dir),
        timeline=chain_report.timeline,
        settings=settings,
    )
    logger.info("restoring backup %s into %s", backup.id, target_dir)
    cluster: LocalCluster | None = None
    try:
        if not existed:
            target_dir.mkdir(mode=0o700, parents=True)
        target_dir.chmod(0o700)
        chown(target_dir, user)
        materialize(
            repo, chain, target_dir, binaries, user=user, on_progress=on_progress
        )
        write_recovery_settings(
            target_dir,
            settings,
            note=f"added by dbamgr restore from {backup.id}",
            user=user,
        )
        report(on_progress, "syncing files")
        fsync_tree(target_dir)
        grant_program_access(user)
        if start:
            cluster = start_restored(
                target_dir,
                binaries,
                run_as=run_as,
                target=target,
                pause=pause,
                timeout=wait_timeout,
                on_progress=on_progress,
            )
            result.started = True
            result.url = cluster.url()
            result.port = cluster.port
            result.log_file = str(cluster.log_file)
    except BaseException:
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.stop(mode="immediate")
        _undo(target_dir, existed)
        raise
    result.seconds = round(time.monotonic() - began, 3)
    return result, cluster


def _undo(target_dir: Path, existed: bool) -> None:
    """Put the target directory back as it was: absent, or empty."""
    if not existed:
        shutil.rmtree(target_dir, ignore_errors=True)
    elif target_dir.is_dir():
        for child in target_dir.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
    shutil.rmtree(run_directory(target_dir), ignore_errors=True)
