"""``dbamgr backup expire``: the retention policy.

A backup is kept when the policy keeps it (the newest ``keep_full`` full backups
with their incrementals; every backup needed to restore to any moment of the
last ``keep_days``), or when a kept incremental builds on it. WAL is removed only
below the oldest start of a kept base backup, so every kept backup keeps the WAL
it needs; timeline history files are never removed.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from dbamgr.backup.repository import (
    KIND_FULL,
    KIND_LOGICAL,
    BackupInfo,
    Repository,
    utcnow,
)
from dbamgr.backup.wal import iter_wal_keys
from dbamgr.backup.walnames import (
    parse_lsn,
    parse_segment,
    segment_name,
    segment_of,
)
from dbamgr.errors import UsageError

logger = logging.getLogger(__name__)

_STALE_SECONDS = 3600.0


@dataclass
class ExpirePlan:
    """What expiry keeps and removes (or would, with ``dry_run``)."""

    keep: dict[str, str] = field(default_factory=dict)
    remove: dict[str, str] = field(default_factory=dict)
    wal_removed: list[str] = field(default_factory=list)
    oldest_wal_kept: str | None = None
    dry_run: bool = False


def _root_full(info: BackupInfo, by_id: dict[str, BackupInfo]) -> BackupInfo:
    while info.parent is not None and info.parent in by_id:
        info = by_id[info.parent]
    return info


def plan_expiry(
    backups: list[BackupInfo],
    *,
    keep_full: int | None,
    keep_days: float | None,
    keep_logical: int | None,
    now: datetime,
    running_elsewhere: set[str] | None = None,
) -> tuple[dict[str, str], dict[str, str]]:
    """Decide which backups stay: returns (kept, removed), each id → reason."""
    if keep_full is None and keep_days is None:
        raise UsageError(
            "no retention policy: nothing would ever be removed",
            hint="set [backup] keep_full and/or keep_days",
        )
    running_elsewhere = running_elsewhere or set()
    complete = [b for b in backups if b.complete]
    physical = [b for b in complete if b.physical]
    by_id = {b.id: b for b in backups}
    keep: dict[str, str] = {}

    if keep_full is not None:
        fulls = [b for b in physical if b.kind == KIND_FULL][-keep_full:]
        kept_roots = {b.id for b in fulls}
        for b in physical:
            if _root_full(b, by_id).id in kept_roots:
                keep.setdefault(b.id, f"among the newest {keep_full} full backups")
    if keep_days is not None:
        cutoff = now - timedelta(days=keep_days)
        older = [b for b in physical if b.stop_time and b.stop_time < cutoff]
        for b in physical:
            if b.stop_time and b.stop_time >= cutoff:
                keep.setdefault(b.id, f"within the {keep_days:g}-day recovery window")
        if older:
            keep.setdefault(older[-1].id, "needed to restore to the window's start")
    if physical and not keep:
        keep[physical[-1].id] = "the newest base backup"

    # a kept incremental needs every backup it builds on
    for backup_id in list(keep):
        parent = by_id[backup_id].parent
        while parent is not None and parent in by_id:
            keep.setdefault(parent, f"a kept incremental builds on it ({backup_id})")
            parent = by_id[parent].parent

    logical = [b for b in complete if b.kind == KIND_LOGICAL]
    kept_logical = logical if keep_logical is None else logical[-keep_logical:]
    for b in kept_logical:
        keep[b.id] = (
            "logical backups kept"
            if keep_logical is None
            else (f"among the newest {keep_logical} logical backups")
        )

    remove: dict[str, str] = {}
    for b in backups:
        if b.id in keep:
            continue
        if not b.complete:
            if b.id in running_elsewhere:
                keep[b.id] = "still running"
            else:
                remove[b.id] = "incomplete: its process is gone"
        else:
            remove[b.id] = "outside the retention policy"
    return keep, remove


def _process_alive(info: BackupInfo) -> bool:
    import os
    import socket

    if info.host != socket.gethostname():
        return True
    try:
        os.kill(info.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def expire(
    repo: Repository,
    *,
    keep_full: int | None,
    keep_days: float | None,
    keep_logical: int | None = None,
    dry_run: bool = False,
) -> ExpirePlan:
    """Apply the retention policy to *repo* (or only plan it, with *dry_run*)."""
    with repo.locked("expire"):
        backups = repo.backups()
        alive = {b.id for b in backups if not b.complete and _process_alive(b)}
        keep, remove = plan_expiry(
            backups,
            keep_full=keep_full,
            keep_days=keep_days,
            keep_logical=keep_logical,
            now=utcnow(),
            running_elsewhere=alive,
        )
        plan = ExpirePlan(keep=keep, remove=remove, dry_run=dry_run)
        by_id = {b.id: b for b in backups}
        kept_physical = [
            by_id[i] for i in keep if by_id[i].physical and by_id[i].start_lsn
        ]
        doomed_wal: list[str] = []
        if kept_physical:
            oldest = min(kept_physical, key=lambda b: parse_lsn(b.start_lsn or "0/0"))
            size = oldest.segment_size or 16 * 1024 * 1024
            floor = segment_of(parse_lsn(oldest.start_lsn or "0/0"), size)
            plan.oldest_wal_kept = segment_name(oldest.timeline or 1, floor, size)
            for key in iter_wal_keys(repo):
                name = key.rsplit("/", 1)[-1]
                segment = parse_segment(name[:24], size)
                if segment is not None and segment.segno < floor:
                    doomed_wal.append(key)
        plan.wal_removed = doomed_wal
        if dry_run:
            return plan
        for backup_id, reason in remove.items():
            logger.info("removing backup %s: %s", backup_id, reason)
            repo.delete(backup_id)
        for key in doomed_wal:
            repo.storage.remove(key)
        _remove_leftovers(repo)
    return plan


def _remove_leftovers(repo: Repository) -> None:
    """Temporary files of interrupted writes, once they are old."""
    leftovers = getattr(repo.storage, "leftovers", None)
    if leftovers is None:
        return
    import shutil

    limit = time.time() - _STALE_SECONDS
    for path in leftovers(""):
        if path.lstat().st_mtime < limit:
            logger.info("removing %s, left by an interrupted write", path)
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
