"""The backup repository: layout, catalog documents, restore points and a lock.

::

    repository.json              format, system identifier of the cluster
    catalog/<id>.json            one document per backup (see BackupInfo)
    backups/<id>/                the backup's files
    wal/<timeline+log>/<segment> archived WAL (compressed: .zst or .gz)
    wal/<tli>.history            timeline history files
    restore_points/<name>.json   restore points made by dbamgr
    drills/<time>.json           drill reports
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import socket
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dbamgr import __version__
from dbamgr.backup.errors import BackupNotFound, RepositoryError
from dbamgr.backup.storage import LocalStorage, Owner, Storage
from dbamgr.errors import ExitCode

if TYPE_CHECKING:
    from dbamgr.config import Project

logger = logging.getLogger(__name__)

FORMAT = 1
KIND_FULL = "full"
KIND_INCREMENTAL = "incremental"
KIND_LOGICAL = "logical"
STATUS_RUNNING = "running"
STATUS_COMPLETE = "complete"
_ID_LETTER = {KIND_FULL: "F", KIND_INCREMENTAL: "I", KIND_LOGICAL: "L"}
_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,63}$")


def utcnow() -> datetime:
    return datetime.now(UTC)


def _to_time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


@dataclass
class BackupInfo:
    """The catalog document of one backup."""

    id: str
    kind: str
    status: str
    start_time: datetime
    stop_time: datetime | None = None
    start_lsn: str | None = None
    stop_lsn: str | None = None
    timeline: int | None = None
    system_identifier: str | None = None
    pg_version: str = ""
    pg_major: int = 0
    segment_size: int | None = None
    parent: str | None = None
    compression: str = "none"
    size: int = 0
    data_size: int = 0
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    databases: list[str] = field(default_factory=list)
    row_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    counts_exact: bool = False
    marker: dict[str, Any] | None = None
    source: str = ""
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    seconds: float | None = None
    dbamgr_version: str = __version__

    @property
    def physical(self) -> bool:
        return self.kind in (KIND_FULL, KIND_INCREMENTAL)

    @property
    def complete(self) -> bool:
        return self.status == STATUS_COMPLETE

    def to_json(self) -> str:
        data = asdict(self)
        for key in ("start_time", "stop_time"):
            value = data[key]
            data[key] = value.isoformat() if value else None
        return json.dumps(data, indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> BackupInfo:
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in data.items() if k in known}
        data["start_time"] = _to_time(data["start_time"])
        data["stop_time"] = _to_time(data.get("stop_time"))
        return cls(**data)


@dataclass
class RestorePoint:
    """A named restore point made by ``dbamgr restore-point``."""

    name: str
    lsn: str
    time: datetime
    timeline: int

    def to_json(self) -> str:
        data = asdict(self) | {"time": self.time.isoformat()}
        return json.dumps(data, indent=2) + "\n"


def check_restore_point_name(name: str) -> None:
    """Refuse a name that cannot be a restore point's file name."""
    if not _NAME.match(name):
        raise RepositoryError(
            f'"{name}" cannot name a restore point',
            hint="use letters, digits, '_', '-', '.', ':' (at most 63)",
        )


class RepositoryLocked(RepositoryError):
    """Another dbamgr process is taking a backup or expiring this repository."""

    exit_code = ExitCode.LOCKED


class Repository:
    """A backup repository over a :class:`Storage`."""

    def __init__(self, storage: Storage, *, path: Path | None = None) -> None:
        self.storage = storage
        self.path = path

    # -- repository metadata -------------------------------------------------

    def read_meta(self) -> dict[str, Any]:
        if not self.storage.exists("repository.json"):
            return {}
        with self.storage.open("repository.json") as handle:
            data = json.loads(handle.read())
        return data if isinstance(data, dict) else {}

    def write_meta(self, **values: Any) -> None:
        meta = {"format": FORMAT} | self.read_meta() | values
        self.storage.write_bytes(
            "repository.json", (json.dumps(meta, indent=2) + "\n").encode()
        )

    def check_system(self, system_identifier: str) -> None:
        """Refuse a cluster other than the one this repository belongs to."""
        known = self.read_meta().get("system_identifier")
        if known is None:
            self.write_meta(system_identifier=system_identifier)
        elif str(known) != system_identifier:
            raise RepositoryError(
                f"the repository {self.storage.location} belongs to the cluster with "
                f'system identifier "{known}", not "{system_identifier}"',
                hint="give each cluster a repository of its own ([backup] repository)",
                repository=self.storage.location,
            )

    # -- catalog -------------------------------------------------------------

    def backups(self) -> list[BackupInfo]:
        """Every backup in the catalog, oldest first."""
        found = []
        for key in self.storage.list("catalog"):
            if not key.endswith(".json"):
                continue
            with self.storage.open(key) as handle:
                try:
                    found.append(BackupInfo.from_json(handle.read().decode()))
                except (ValueError, KeyError, TypeError) as exc:
                    logger.warning(
                        "skipping unreadable catalog document %s: %s", key, exc
                    )
        return sorted(found, key=lambda b: (b.start_time, b.id))

    def complete_backups(self, *, physical: bool | None = None) -> list[BackupInfo]:
        """Complete backups, oldest first; only physical or logical ones if asked."""
        return [
            b
            for b in self.backups()
            if b.complete and (physical is None or b.physical == physical)
        ]

    def get(self, backup_id: str) -> BackupInfo:
        """The backup *backup_id*; a unique prefix is enough."""
        backups = self.backups()
        exact = [b for b in backups if b.id == backup_id]
        matches = exact or [b for b in backups if b.id.startswith(backup_id)]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise BackupNotFound(
                f'no backup "{backup_id}" in {self.storage.location}',
                hint="list them with `dbamgr backup list`",
                backup=backup_id,
            )
        raise BackupNotFound(
            f'"{backup_id}" matches several backups: '
            + ", ".join(b.id for b in matches),
            hint="give more of the id",
        )

    def save(self, info: BackupInfo) -> None:
        self.storage.write_bytes(f"catalog/{info.id}.json", info.to_json().encode())

    def new_id(self, kind: str) -> str:
        stamp = utcnow().strftime("%Y%m%d-%H%M%S")
        taken = {b.id for b in self.backups()}
        candidate = f"{stamp}{_ID_LETTER[kind]}"
        counter = 1
        while candidate in taken:
            counter += 1
            candidate = f"{stamp}{_ID_LETTER[kind]}{counter}"
        return candidate

    def data_prefix(self, backup_id: str) -> str:
        return f"backups/{backup_id}"

    def data_dir(self, backup_id: str) -> Path:
        """The local directory holding a backup's files."""
        path = self.storage.local_path(self.data_prefix(backup_id))
        if path is None:
            raise RepositoryError("this storage has no local files")
        return path

    def delete(self, backup_id: str) -> None:
        """Remove a backup: its catalog document first, then its files."""
        self.storage.remove(f"catalog/{backup_id}.json")
        self.storage.remove_tree(self.data_prefix(backup_id))

    def chain(self, info: BackupInfo) -> list[BackupInfo]:
        """*info* and the backups it builds on, the full backup first."""
        chain = [info]
        while chain[0].parent is not None:
            chain.insert(0, self.get(chain[0].parent))
        return chain

    # -- restore points ------------------------------------------------------

    def save_restore_point(self, point: RestorePoint) -> None:
        check_restore_point_name(point.name)
        self.storage.write_bytes(
            f"restore_points/{point.name}.json", point.to_json().encode()
        )

    def restore_point(self, name: str) -> RestorePoint | None:
        key = f"restore_points/{name}.json"
        if not _NAME.match(name) or not self.storage.exists(key):
            return None
        with self.storage.open(key) as handle:
            data = json.loads(handle.read())
        return RestorePoint(
            data["name"],
            data["lsn"],
            datetime.fromisoformat(data["time"]),
            int(data["timeline"]),
        )

    # -- locking -------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self, purpose: str) -> Iterator[None]:
        """Hold the repository's lock (backups and expiry take it)."""
        if self.path is None:
            yield
            return
        lock_path = self.path / ".lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        owner = getattr(self.storage, "owner", None)
        if owner is not None:
            os.fchown(fd, owner.uid, owner.gid)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = lock_path.with_name(".lock.holder")
                who = (
                    holder.read_text().strip() if holder.exists() else "another process"
                )
                raise RepositoryLocked(
                    f"the repository {self.path} is locked by {who}",
                    hint="wait for it to finish, then run this again",
                ) from None
            self.storage.write_bytes(
                ".lock.holder", f"{purpose} (pid {os.getpid()})\n".encode()
            )
            yield
        finally:
            os.close(fd)


def open_repository(
    path: Path, *, run_as: str = "dbamgr", create: bool = False
) -> Repository:
    """Open the local repository in *path* (creating it if asked).

    As root, the repository belongs to the system user *run_as*, which runs the
    server and so ``archive_command``; the directories above it are made
    searchable by that user.
    """
    path = Path(path).absolute()
    owner: Owner | None = None
    if os.geteuid() == 0:
        if path.is_dir():
            info = path.stat()
            owner = Owner(info.st_uid, info.st_gid)
        else:
            from dbamgr.server.process import service_user

            user = service_user(run_as)
            owner = Owner(user.uid, user.gid) if user is not None else None
    storage = LocalStorage(path, owner)
    if not path.is_dir():
        if not create:
            raise RepositoryError(
                f"no backup repository in {path}",
                hint="run `dbamgr archive enable` or `dbamgr backup base` first, or "
                "set [backup] repository",
                repository=str(path),
            )
        logger.info("creating the backup repository in %s", path)
        path.parent.mkdir(parents=True, exist_ok=True)
        storage.make_dirs(path)
    if owner is not None and owner.uid != 0 and create:
        from dbamgr.server.process import RunAs, grant_search

        grant_search(path / "wal", RunAs(run_as, owner.uid, owner.gid))
    repo = Repository(storage, path=path)
    if create and not storage.exists("repository.json"):
        repo.write_meta(created_at=utcnow().isoformat())
    return repo


def project_repository(project: Project, *, create: bool = False) -> Repository:
    """The repository configured by the project's ``[backup] repository``."""
    return open_repository(
        project.backup_repository,
        run_as=project.config.server.run_as,
        create=create,
    )
