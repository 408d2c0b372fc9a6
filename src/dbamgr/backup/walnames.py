"""WAL positions and file names: LSNs, segments, timelines and history files."""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

DEFAULT_SEGMENT_SIZE = 16 * 1024 * 1024
_SEGMENT = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$")
_HISTORY = re.compile(r"^([0-9A-F]{8})\.history$")
_LSN = re.compile(r"^\s*([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})\s*$")
# XLogLongPageHeaderData: the standard header (24 bytes), then the system
# identifier (8), the segment size (4) and the block size (4)
_LONG_HEADER = struct.Struct("<HHIQIxxxxQII")
_XLP_LONG_HEADER = 0x0002


def parse_size(text: str) -> int:
    """A size setting as PostgreSQL shows it (``"16MB"``, ``"1GB"``) in bytes."""
    units = {"kB": 1024, "MB": 1024**2, "GB": 1024**3}
    for unit, factor in units.items():
        if text.endswith(unit):
            return int(text[: -len(unit)]) * factor
    return int(text)


def parse_lsn(text: str) -> int:
    """``"0/3000028"`` → 50331688."""
    match = _LSN.match(text)
    if match is None:
        raise ValueError(f'"{text}" is not an LSN: write it as in 0/3000028')
    return (int(match[1], 16) << 32) | int(match[2], 16)


def format_lsn(lsn: int) -> str:
    """50331688 → ``"0/3000028"``."""
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def segments_per_id(segment_size: int) -> int:
    return 0x100000000 // segment_size


def segment_name(tli: int, segno: int, segment_size: int) -> str:
    """The file name of segment *segno* on timeline *tli*."""
    per_id = segments_per_id(segment_size)
    return f"{tli:08X}{segno // per_id:08X}{segno % per_id:08X}"


def segment_of(lsn: int, segment_size: int) -> int:
    """The number of the segment that holds the byte at *lsn*."""
    return lsn // segment_size


def last_segment_of(end_lsn: int, segment_size: int) -> int:
    """The segment holding the last byte before *end_lsn* (an end position)."""
    return max(end_lsn - 1, 0) // segment_size


@dataclass(frozen=True, order=True)
class Segment:
    """A WAL segment file's timeline and number."""

    tli: int
    segno: int

    def name(self, segment_size: int) -> str:
        return segment_name(self.tli, self.segno, segment_size)


def parse_segment(name: str, segment_size: int) -> Segment | None:
    """The segment a file name denotes, or None for other WAL files."""
    match = _SEGMENT.match(name)
    if match is None:
        return None
    per_id = segments_per_id(segment_size)
    return Segment(int(match[1], 16), int(match[2], 16) * per_id + int(match[3], 16))


def is_segment(name: str) -> bool:
    """Whether *name* is a WAL segment file name (24 hexadecimal digits)."""
    return _SEGMENT.match(name) is not None


def history_tli(name: str) -> int | None:
    """The timeline of a ``0000000N.history`` file name, or None."""
    match = _HISTORY.match(name)
    return int(match[1], 16) if match else None


def history_name(tli: int) -> str:
    return f"{tli:08X}.history"


@dataclass(frozen=True)
class Switch:
    """One line of a timeline history file: *tli* ended at *lsn*."""

    tli: int
    lsn: int


def parse_history(text: str) -> list[Switch]:
    """The ancestors listed in a timeline history file, oldest first."""
    switches = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) < 2:
            continue
        switches.append(Switch(int(fields[0]), parse_lsn(fields[1])))
    return switches


@dataclass(frozen=True)
class SegmentHeader:
    """What the first page of a WAL segment says about the cluster."""

    tli: int
    page_address: int
    system_identifier: int
    segment_size: int


def read_segment_header(data: bytes) -> SegmentHeader | None:
    """Read the long page header at the start of a segment, if it has one."""
    if len(data) < _LONG_HEADER.size:
        return None
    _magic, info, tli, pageaddr, _rem, sysid, seg_size, _blck = (
        _LONG_HEADER.unpack_from(data)
    )
    if not info & _XLP_LONG_HEADER:
        return None
    return SegmentHeader(tli, pageaddr, sysid, seg_size)
