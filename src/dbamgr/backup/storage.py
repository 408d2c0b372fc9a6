"""Where a repository keeps its files: a small interface and a local directory.

Keys are ``/``-separated relative paths (``wal/0000000100000000/…``). Every write
is atomic: the content goes to a temporary file that is fsynced, renamed over the
final name, and the directory is fsynced, so a crash leaves either the old state
or the new one, never a torn file under the final name. Object storage can be
added later behind the same interface; the directory of a base backup is filled
through :meth:`Storage.staging`, which an object store would upload on commit.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple, Protocol

from dbamgr.backup.errors import RepositoryError

DIR_MODE = 0o700
FILE_MODE = 0o600
_TMP_MARK = ".tmp."
_COPY_CHUNK = 1 << 20


class Owner(NamedTuple):
    """The numeric owner given to repository files when dbamgr runs as root."""

    uid: int
    gid: int


class Storage(Protocol):
    """The operations a repository needs from the place that holds its files."""

    @property
    def location(self) -> str:
        """Where the storage is, for messages."""
        ...

    def exists(self, key: str) -> bool:
        """Whether a file *key* exists."""
        ...

    def list(self, prefix: str) -> list[str]:
        """The keys of the files under *prefix* (recursively), sorted."""
        ...

    def size(self, key: str) -> int:
        """The size of file *key* in bytes."""
        ...

    def open(self, key: str) -> BinaryIO:
        """Open file *key* for reading."""
        ...

    def write(self, key: str, source: BinaryIO) -> int:
        """Store the content of *source* as *key*, atomically; return its size."""
        ...

    def write_bytes(self, key: str, data: bytes) -> None:
        """Store *data* as *key*, atomically."""
        ...

    def remove(self, key: str) -> None:
        """Remove file *key* (no error if it is gone already)."""
        ...

    def remove_tree(self, prefix: str) -> None:
        """Remove everything under *prefix*."""
        ...

    def staging(self, prefix: str) -> contextlib.AbstractContextManager[Path]:
        """A local directory to fill; committed under *prefix* when the block
        ends without error, discarded otherwise."""
        ...

    def local_path(self, key: str) -> Path | None:
        """A local path of *key* for programs that read files, if there is one."""
        ...


def fsync_dir(path: Path) -> None:
    """Flush a directory's entries (new, renamed or removed names) to disk."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """fsync every file and directory under *root*, and *root* itself."""
    for directory, _dirs, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(directory, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(directory))


class LocalStorage:
    """A repository in a local directory: directories 0700, files 0600.

    When dbamgr runs as root, everything is given to *owner*, the system user
    that runs PostgreSQL, because ``archive_command`` and ``restore_command``
    run as that user and must write and read the WAL archive.
    """

    def __init__(self, root: Path, owner: Owner | None = None) -> None:
        self.root = Path(root).absolute()
        self.owner = owner

    @property
    def location(self) -> str:
        return str(self.root)

    def _path(self, key: str) -> Path:
        if key.startswith("/") or ".." in key.split("/"):
            raise RepositoryError(f'"{key}" is not a valid repository key')
        return self.root / key

    def _own(self, path: Path) -> None:
        if self.owner is not None:
            os.chown(path, self.owner.uid, self.owner.gid, follow_symlinks=False)

    def make_dirs(self, path: Path) -> None:
        """Create *path* and its missing parents inside the repository, 0700."""
        missing = []
        current = path
        while not current.exists():
            missing.append(current)
            if current == self.root:
                break
            current = current.parent
        for directory in reversed(missing):
            directory.mkdir(mode=DIR_MODE, exist_ok=True)
            directory.chmod(DIR_MODE)
            self._own(directory)
            fsync_dir(directory.parent)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str) -> list[str]:
        base = self._path(prefix)
        if not base.is_dir():
            return []
        found = []
        for directory, _dirs, files in os.walk(base):
            for name in files:
                if _TMP_MARK in name:
                    continue
                full = Path(directory, name)
                found.append(full.relative_to(self.root).as_posix())
        return sorted(found)

    def size(self, key: str) -> int:
        return self._path(key).stat().st_size

    def open(self, key: str) -> BinaryIO:
        return self._path(key).open("rb")

    def write(self, key: str, source: BinaryIO) -> int:
        final = self._path(key)
        self.make_dirs(final.parent)
        tmp = final.with_name(f".{final.name}{_TMP_MARK}{uuid.uuid4().hex[:8]}")
        size = 0
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
            with os.fdopen(fd, "wb") as out:
                while chunk := source.read(_COPY_CHUNK):
                    out.write(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            self._own(tmp)
            os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        fsync_dir(final.parent)
        return size

    def write_bytes(self, key: str, data: bytes) -> None:
        import io

        self.write(key, io.BytesIO(data))

    def remove(self, key: str) -> None:
        path = self._path(key)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            fsync_dir(path.parent)

    def remove_tree(self, prefix: str) -> None:
        path = self._path(prefix)
        if path.exists():
            shutil.rmtree(path)
            fsync_dir(path.parent)

    @contextlib.contextmanager
    def staging(self, prefix: str) -> Iterator[Path]:
        final = self._path(prefix)
        if final.exists():
            raise RepositoryError(f"{final} exists already")
        self.make_dirs(final.parent)
        work = final.with_name(f".{final.name}{_TMP_MARK}{uuid.uuid4().hex[:8]}")
        work.mkdir(mode=DIR_MODE)
        try:
            yield work
            self.secure_tree(work)
            fsync_tree(work)
            os.replace(work, final)
            fsync_dir(final.parent)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise

    def secure_tree(self, root: Path) -> None:
        """Give every file under *root* mode 0600 (directories 0700) and the owner."""
        for directory, _dirs, files in os.walk(root):
            Path(directory).chmod(DIR_MODE)
            self._own(Path(directory))
            for name in files:
                path = Path(directory, name)
                path.chmod(FILE_MODE)
                self._own(path)

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def leftovers(self, prefix: str) -> builtins.list[Path]:
        """Temporary files and staging directories left by interrupted writes."""
        base = self._path(prefix)
        if not base.is_dir():
            return []
        return sorted(p for p in base.rglob(f"*{_TMP_MARK}*"))
