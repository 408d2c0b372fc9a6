"""The WAL archive: ``wal push`` and ``wal fetch``, and the chain of segments.

A pushed file is streamed into a temporary file, fsynced, renamed to its final
name and its directory fsynced (see :class:`LocalStorage`), so a push killed
halfway leaves nothing under the final name. Pushing a file that is already
archived with the same content succeeds (PostgreSQL retries a push whose success
it did not record); different content is refused.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import zstandard

from dbamgr.backup.compress import SUFFIXES, open_decompressed
from dbamgr.backup.errors import BackupError, WalConflict, WalNotFound
from dbamgr.backup.repository import Repository
from dbamgr.backup.walnames import (
    Switch,
    history_name,
    history_tli,
    is_segment,
    last_segment_of,
    parse_history,
    parse_segment,
    read_segment_header,
    segment_name,
    segment_of,
)

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20
_WAL_PREFIX = "wal"


def wal_key(name: str) -> str:
    """Where WAL file *name* lives in the repository (without suffix)."""
    if history_tli(name) is not None:
        return f"{_WAL_PREFIX}/{name}"
    base = name.split(".", 1)[0]
    if len(base) == 24 and all(c in "0123456789ABCDEF" for c in base):
        return f"{_WAL_PREFIX}/{base[:16]}/{name}"
    raise BackupError(
        f'"{name}" is not the name of a WAL file',
        hint="archive_command passes %f, the file name PostgreSQL chose",
        name=name,
    )


def _find(repo: Repository, name: str) -> tuple[str, str] | None:
    """(key, compression) of an archived WAL file, if it is there."""
    key = wal_key(name)
    for method, suffix in SUFFIXES.items():
        if repo.storage.exists(key + suffix):
            return key + suffix, method
    return None


class _CompressingReader(io.RawIOBase):
    """Reads a source and yields its gzip-compressed bytes."""

    def __init__(self, source: BinaryIO) -> None:
        self._source = source
        self._compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
        self._pending = b""
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._pending and not self._done:
            chunk = self._source.read(_CHUNK)
            if chunk:
                self._pending = self._compressor.compress(chunk)
            else:
                self._pending = self._compressor.flush()
                self._done = True
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def _compressing(source: BinaryIO, method: str) -> BinaryIO:
    if method == "zstd":
        reader = zstandard.ZstdCompressor(level=3).stream_reader(
            source, read_size=_CHUNK
        )
        return io.BufferedReader(reader, _CHUNK)
    if method == "gzip":
        return io.BufferedReader(_CompressingReader(source), _CHUNK)
    return source


class _Inspecting(io.RawIOBase):
    """Passes a source through, hashing it and checking the segment header."""

    def __init__(self, source: BinaryIO, check: bool, repo: Repository) -> None:
        self._source = source
        self._check = check
        self._repo = repo
        self.digest = hashlib.sha256()
        self._first = True

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._source.read(len(buffer))
        if self._first and data and self._check:
            header = read_segment_header(data)
            if header is not None:
                self._repo.check_system(str(header.system_identifier))
        self._first = False
        self.digest.update(data)
        buffer[: len(data)] = data
        return len(data)


def _digest(stream: BinaryIO) -> str:
    digest = hashlib.sha256()
    while chunk := stream.read(_CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class PushResult:
    """What ``wal push`` did with one file."""

    name: str
    key: str
    size: int
    already_archived: bool


def push_wal(
    repo: Repository, source: Path, name: str, *, compression: str = "none"
) -> PushResult:
    """Archive the WAL file at *source* as *name* (see the module's docstring)."""
    key = wal_key(name)
    existing = _find(repo, name)
    if existing is not None:
        old_key, method = existing
        with repo.storage.open(old_key) as raw:
            old_digest = _digest(open_decompressed(raw, method))
        with source.open("rb") as handle:
            new_digest = _digest(handle)
        if old_digest != new_digest:
            raise WalConflict(
                f'WAL file "{name}" is already archived with different content',
                hint="two clusters may be archiving into the same repository: give "
                "each its own, and check the archive with `dbamgr backup verify`",
                name=name,
                key=old_key,
            )
        logger.info("%s is already archived with the same content", name)
        return PushResult(name, old_key, repo.storage.size(old_key), True)

    target = key + SUFFIXES[compression]
    with source.open("rb") as handle:
        inspecting = _Inspecting(handle, is_segment(name), repo)
        size = repo.storage.write(
            target, _compressing(io.BufferedReader(inspecting, _CHUNK), compression)
        )
    logger.info("archived %s (%d bytes stored)", name, size)
    return PushResult(name, target, size, False)


def fetch_wal(repo: Repository, name: str, destination: Path) -> None:
    """Restore archived WAL file *name* to *destination*.

    Raises :class:`WalNotFound` when the archive does not hold it.
    """
    found = _find(repo, name)
    if found is None:
        raise WalNotFound(
            f'WAL file "{name}" is not in the archive {repo.storage.location}',
            name=name,
        )
    key, method = found
    tmp = destination.with_name(f".{destination.name}.dbamgr-fetch")
    try:
        with repo.storage.open(key) as raw, tmp.open("wb") as out:
            reader = open_decompressed(raw, method)
            while chunk := reader.read(_CHUNK):
                out.write(chunk)
        os.replace(tmp, destination)
    except (OSError, EOFError, zstandard.ZstdError, zlib.error) as exc:
        tmp.unlink(missing_ok=True)
        raise BackupError(
            f'cannot restore WAL file "{name}" from {key}: {exc}',
            hint="check the archive with `dbamgr backup verify`",
            name=name,
        ) from exc
    logger.info("restored %s", name)


@dataclass
class WalIndex:
    """The archived WAL: segments per timeline, and timeline histories."""

    segment_size: int
    segments: dict[int, set[int]] = field(default_factory=dict)
    histories: dict[int, list[Switch]] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)

    def newest(self, tli: int) -> int | None:
        found = self.segments.get(tli)
        return max(found) if found else None

    def descendants(self, tli: int, lsn: int) -> list[int]:
        """Timelines that branch off *tli* after *lsn* (or *tli* itself)."""
        found = [tli]
        for child, switches in self.histories.items():
            for switch in switches:
                if switch.tli == tli and switch.lsn >= lsn:
                    found.append(child)
                    break
        return sorted(set(found))


def index_wal(repo: Repository, segment_size: int) -> WalIndex:
    """Read the archive's listing (and its history files)."""
    index = WalIndex(segment_size)
    for key in repo.storage.list(_WAL_PREFIX):
        filename = key.rsplit("/", 1)[-1]
        bare = filename
        for suffix in (".zst", ".gz", ".lz4"):
            bare = bare.removesuffix(suffix)
        index.keys[bare] = key
        tli = history_tli(bare)
        if tli is not None:
            with repo.storage.open(key) as handle:
                index.histories[tli] = parse_history(handle.read().decode())
            continue
        segment = parse_segment(bare, segment_size)
        if segment is not None:
            index.segments.setdefault(segment.tli, set()).add(segment.segno)
    return index


@dataclass
class ChainReport:
    """Whether the WAL from a backup's start to the newest segment is complete."""

    timeline: int
    first_segment: str
    last_segment: str | None
    segments: int
    missing: list[str]

    @property
    def ok(self) -> bool:
        return not self.missing


def _path_pieces(
    index: WalIndex, start_tli: int, start_lsn: int, newest_tli: int
) -> list[tuple[int, int, int | None]]:
    """(timeline, from LSN, to LSN or None) from the backup to *newest_tli*."""
    if newest_tli == start_tli:
        return [(start_tli, start_lsn, None)]
    pieces: list[tuple[int, int, int | None]] = []
    begin = start_lsn
    on_path = False
    for switch in index.histories.get(newest_tli, []):
        on_path = on_path or switch.tli == start_tli
        if on_path:
            pieces.append((switch.tli, begin, switch.lsn))
            begin = switch.lsn
    pieces.append((newest_tli, begin, None))
    return pieces


def check_chain(
    repo: Repository,
    *,
    tli: int,
    start_lsn: int,
    stop_lsn: int,
    segment_size: int,
    index: WalIndex | None = None,
) -> ChainReport:
    """Check that every segment from *start_lsn* on timeline *tli* to the newest
    archived one (following timeline switches) is in the archive, and at least
    up to the segment holding *stop_lsn*."""
    index = index or index_wal(repo, segment_size)
    newest_tli = max(index.descendants(tli, stop_lsn))
    missing: list[str] = []
    total = 0
    last: str | None = None
    stop_segno = last_segment_of(stop_lsn, segment_size)
    for piece_tli, begin, end in _path_pieces(index, tli, start_lsn, newest_tli):
        have = index.segments.get(piece_tli, set())
        first = segment_of(begin, segment_size)
        if end is not None:
            # the segment holding the switch is read from the next timeline
            upto = segment_of(end, segment_size) - 1
        else:
            upto = max(max(have, default=first - 1), stop_segno)
        for segno in range(first, upto + 1):
            total += 1
            name = segment_name(piece_tli, segno, segment_size)
            if segno in have:
                last = name
            else:
                missing.append(name)
        if piece_tli > 1 and history_name(piece_tli) not in index.keys:
            missing.append(history_name(piece_tli))
    first_name = segment_name(tli, segment_of(start_lsn, segment_size), segment_size)
    return ChainReport(newest_tli, first_name, last, total, missing)


def iter_wal_keys(repo: Repository) -> Iterator[str]:
    """Every key in the WAL archive."""
    yield from repo.storage.list(_WAL_PREFIX)
