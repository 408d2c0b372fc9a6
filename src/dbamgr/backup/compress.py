"""Compression: what pg_basebackup supports, and reading compressed tar files.

Base backups are compressed by pg_basebackup itself (on the client side, so the
choice depends only on how its binaries were built). dbamgr reads them back with
the ``zstandard`` package, the standard library's gzip, or ``lz4`` when that
package is installed.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import io
import logging
import os
import tarfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import zstandard

from dbamgr.backup.errors import BackupError

if TYPE_CHECKING:
    from dbamgr.server.binaries import PgBinaries

logger = logging.getLogger(__name__)

SUFFIXES = {"zstd": ".zst", "lz4": ".lz4", "gzip": ".gz", "none": ""}
_PREFERENCE = ("zstd", "lz4", "gzip")
_READ_CHUNK = 1 << 20


def lz4_available() -> bool:
    """Whether the ``lz4`` package is installed to read lz4 files."""
    return importlib.util.find_spec("lz4") is not None


@functools.cache
def basebackup_supports(binaries: PgBinaries, method: str) -> bool:
    """Whether this pg_basebackup build can compress with *method* on the client.

    The check runs pg_basebackup against a closed port: it rejects an unsupported
    method before it tries to connect.
    """
    from dbamgr.server.process import run

    if method == "none":
        return True
    result = run(
        [
            binaries.path("pg_basebackup"),
            "-D",
            "/nonexistent",
            "-Ft",
            f"--compress=client-{method}",
            "-d",
            "host=127.0.0.1 port=1 connect_timeout=1",
        ],
        check=False,
        timeout=30,
    )
    return "does not support compression" not in result.stderr


def choose_compression(binaries: PgBinaries, wanted: str) -> str:
    """The compression for base backups: *wanted*, or with ``auto`` the best one
    this pg_basebackup supports (zstd, then lz4, then gzip)."""
    if wanted != "auto":
        if not basebackup_supports(binaries, wanted):
            raise BackupError(
                f"pg_basebackup {binaries.version} in {binaries.bin_dir} was built "
                f'without "{wanted}" compression',
                hint='set [backup] compression to "auto" or to one it supports',
                compression=wanted,
            )
        if wanted == "lz4" and not lz4_available():
            raise BackupError(
                "lz4 backups need the lz4 Python package to be restored",
                hint="pip install lz4, or choose zstd or gzip",
            )
        return wanted
    for method in _PREFERENCE:
        if method == "lz4" and not lz4_available():
            continue
        if basebackup_supports(binaries, method):
            return method
    return "none"


def method_of(path: Path) -> str:
    """The compression of a file, from its suffix."""
    for method, suffix in SUFFIXES.items():
        if suffix and path.name.endswith(suffix):
            return method
    return "none"


class _ZstdReader(io.RawIOBase):
    """Decompresses zstd frames, and refuses a stream cut short."""

    def __init__(self, source: BinaryIO) -> None:
        self._source = source
        self._decompressor = zstandard.ZstdDecompressor()
        self._current = self._decompressor.decompressobj()
        self._pending = b""
        self._started = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            chunk = self._source.read(_READ_CHUNK)
            if not chunk:
                if self._started and not self._current.eof:
                    raise EOFError("the zstd stream ends in the middle of a frame")
                return 0
            self._started = True
            while chunk:
                if self._current.eof:
                    self._current = self._decompressor.decompressobj()
                self._pending += self._current.decompress(chunk)
                chunk = self._current.unused_data
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def open_decompressed(source: BinaryIO, method: str) -> BinaryIO:
    """A reader of the uncompressed content of *source*."""
    if method == "none":
        return source
    if method == "gzip":
        return gzip.GzipFile(fileobj=source, mode="rb")  # type: ignore[return-value]
    if method == "zstd":
        return io.BufferedReader(_ZstdReader(source), _READ_CHUNK)
    if method == "lz4":
        if not lz4_available():
            raise BackupError(
                "this backup is compressed with lz4: install the lz4 Python package"
            )
        import lz4.frame

        return lz4.frame.LZ4FrameFile(source, mode="rb")  # type: ignore[no-any-return,unused-ignore]
    raise BackupError(f'unknown compression "{method}"')


@contextmanager
def open_tar(path: Path) -> Iterator[tarfile.TarFile]:
    """Open a possibly compressed tar file for streaming reads."""
    with path.open("rb") as raw:
        stream = open_decompressed(raw, method_of(path))
        with tarfile.open(fileobj=stream, mode="r|", bufsize=_READ_CHUNK) as archive:
            # TarFile reads members in 16 kB pieces unless told otherwise
            archive.copybufsize = _READ_CHUNK  # type: ignore[attr-defined]
            yield archive


MemberFilter = Callable[[tarfile.TarInfo, str], tarfile.TarInfo | None]


def extract_tar(
    path: Path,
    destination: Path,
    *,
    owner: tuple[int, int] | None = None,
    on_bytes: Callable[[int], None] | None = None,
    skip: Callable[[tarfile.TarInfo], bool] | None = None,
) -> None:
    """Extract *path* into *destination*, refusing names that leave it.

    *owner* (uid, gid) is given to every file when running as root; *on_bytes*
    is told the size of each file extracted (for progress); *skip* drops members.
    """

    def member_filter(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
        if skip is not None and skip(member):
            return None
        checked = tarfile.tar_filter(member, dest)
        if checked is None:
            return None
        if owner is not None and os.geteuid() == 0:
            checked = checked.replace(
                uid=owner[0], gid=owner[1], uname="", gname="", deep=False
            )
        if on_bytes is not None and checked.isfile():
            on_bytes(checked.size)
        return checked

    try:
        with open_tar(path) as archive:
            archive.extractall(destination, filter=member_filter)
    except (tarfile.TarError, OSError, EOFError, zstandard.ZstdError) as exc:
        raise BackupError(
            f"cannot extract {path}: {exc}",
            hint="run `dbamgr backup verify` on this backup",
            file=str(path),
        ) from exc
