"""WAL names, timeline histories and the chain check, on a repository of files."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from dbamgr.backup.errors import RepositoryError
from dbamgr.backup.repository import Repository, open_repository
from dbamgr.backup.wal import check_chain, push_wal
from dbamgr.backup.walnames import (
    format_lsn,
    parse_history,
    parse_lsn,
    parse_segment,
    parse_size,
    segment_name,
)

SIZE = 16 * 1024 * 1024


def test_lsn_and_segment_names_round_trip() -> None:
    assert parse_lsn("0/3000028") == 0x3000028
    assert format_lsn(parse_lsn("1A/FF000000")) == "1A/FF000000"
    assert segment_name(1, 0x1FF, SIZE) == "0000000100000001000000FF"
    segment = parse_segment("0000000200000001000000FF", SIZE)
    assert segment is not None and (segment.tli, segment.segno) == (2, 0x1FF)
    assert parse_segment("00000002.history", SIZE) is None
    assert parse_size("16MB") == SIZE and parse_size("1GB") == 1024**3
    with pytest.raises(ValueError, match="not an LSN"):
        parse_lsn("yesterday")


def test_history_files_list_the_ancestors() -> None:
    text = "1\t0/5000100\tno recovery target specified\n\n2\t0/9000000\tbefore x\n"
    switches = parse_history(text)
    assert [(s.tli, format_lsn(s.lsn)) for s in switches] == [
        (1, "0/5000100"),
        (2, "0/9000000"),
    ]


def archive(
    repo: Repository, *names: str, history: dict[int, str] | None = None
) -> None:
    for name in names:
        key = f"wal/{name[:16]}/{name}"
        repo.storage.write_bytes(key, b"x")
    for tli, text in (history or {}).items():
        repo.storage.write_bytes(f"wal/{tli:08X}.history", text.encode())


def test_the_chain_follows_a_timeline_switch_and_finds_gaps(tmp_path: Path) -> None:
    repo = open_repository(tmp_path / "repo", create=True)
    tl1 = [segment_name(1, n, SIZE) for n in range(2, 6)]
    # timeline 2 forks in segment 5: its copy of segment 5 and later are on tl 2
    tl2 = [segment_name(2, n, SIZE) for n in range(5, 8)]
    archive(repo, *tl1, *tl2, history={2: "1\t0/5000100\tpromoted\n"})
    report = check_chain(
        repo,
        tli=1,
        start_lsn=parse_lsn("0/2000028"),
        stop_lsn=parse_lsn("0/2000100"),
        segment_size=SIZE,
    )
    assert report.ok, report.missing
    assert report.timeline == 2 and report.last_segment == tl2[-1]

    repo.storage.remove(f"wal/{tl1[1][:16]}/{tl1[1]}")
    repo.storage.remove("wal/00000002.history")
    report = check_chain(
        repo,
        tli=1,
        start_lsn=parse_lsn("0/2000028"),
        stop_lsn=parse_lsn("0/2000100"),
        segment_size=SIZE,
    )
    assert tl1[1] in report.missing


def test_the_chain_must_reach_the_backup_end(tmp_path: Path) -> None:
    repo = open_repository(tmp_path / "repo", create=True)
    archive(repo, segment_name(1, 2, SIZE))
    report = check_chain(
        repo,
        tli=1,
        start_lsn=parse_lsn("0/2000028"),
        stop_lsn=parse_lsn("0/3000100"),
        segment_size=SIZE,
    )
    assert report.missing == [segment_name(1, 3, SIZE)]


def segment_header(system_identifier: int) -> bytes:
    header = struct.pack(
        "<HHIQIxxxxQII", 0xD118, 0x0002, 1, 0, 0, system_identifier, SIZE, 8192
    )
    return header + b"\0" * (8192 - len(header))


def test_wal_from_another_cluster_is_refused(tmp_path: Path) -> None:
    repo = open_repository(tmp_path / "repo", create=True)
    first = tmp_path / "first"
    first.write_bytes(segment_header(7001))
    push_wal(repo, first, segment_name(1, 1, SIZE))
    assert repo.read_meta()["system_identifier"] == "7001"

    other = tmp_path / "other"
    other.write_bytes(segment_header(7002))
    with pytest.raises(RepositoryError, match="belongs to the cluster"):
        push_wal(repo, other, segment_name(1, 2, SIZE))
    assert not repo.storage.exists(
        f"wal/{segment_name(1, 2, SIZE)[:16]}/{segment_name(1, 2, SIZE)}"
    )
