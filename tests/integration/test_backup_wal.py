"""wal push and wal fetch as PostgreSQL runs them: separate processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dbamgr.backup.errors import WalConflict
from dbamgr.backup.repository import Repository, open_repository
from dbamgr.backup.wal import fetch_wal, push_wal
from dbamgr.backup.walcli import FETCH_ERROR_EXIT

SEGMENT = "000000010000000000000003"
SIZE = 16 * 1024 * 1024


def wal_like(seed: int) -> bytes:
    """16 MB that look like no WAL header (no system identifier to check)."""
    block = bytes((seed + i) % 251 for i in range(8192))
    return b"\0" * 24 + (block * (SIZE // len(block)))[24:]


def dbamgr(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dbamgr", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Repository:
    # only this process uses it: pytest's temporary directory will do
    return open_repository(tmp_path / "repo", create=True)


@pytest.mark.parametrize("compression", ["none", "zstd", "gzip"])
def test_push_is_idempotent_and_refuses_different_content(
    repo: Repository, tmp_path: Path, compression: str
) -> None:
    source = tmp_path / SEGMENT
    source.write_bytes(wal_like(1))
    first = push_wal(repo, source, SEGMENT, compression=compression)
    again = push_wal(repo, source, SEGMENT, compression=compression)
    assert not first.already_archived and again.already_archived
    if compression != "none":
        assert first.size < SIZE

    source.write_bytes(wal_like(2))
    with pytest.raises(WalConflict, match="different content"):
        push_wal(repo, source, SEGMENT, compression=compression)

    restored = tmp_path / "restored"
    fetch_wal(repo, SEGMENT, restored)
    assert restored.read_bytes() == wal_like(1)


def test_the_command_line_exit_codes_follow_postgresql(
    repo: Repository, tmp_path: Path
) -> None:
    source = tmp_path / SEGMENT
    source.write_bytes(wal_like(3))
    assert repo.path is not None
    pushed = dbamgr(
        "wal",
        "push",
        "--repo",
        str(repo.path),
        "--compress",
        "zstd",
        str(source),
        SEGMENT,
    )
    assert pushed.returncode == 0, pushed.stderr
    assert (
        dbamgr("wal", "push", "--repo", str(repo.path), str(source), SEGMENT).returncode
        == 0
    )

    source.write_bytes(wal_like(4))
    conflict = dbamgr("wal", "push", "--repo", str(repo.path), str(source), SEGMENT)
    assert conflict.returncode == 1
    assert "different content" in conflict.stderr

    target = tmp_path / "RECOVERYXLOG"
    missing = dbamgr(
        "wal",
        "fetch",
        "--repo",
        str(repo.path),
        "000000010000000000000009",
        str(target),
    )
    assert missing.returncode == 1 and not target.exists()

    fetched = dbamgr("wal", "fetch", "--repo", str(repo.path), SEGMENT, str(target))
    assert fetched.returncode == 0
    assert target.read_bytes() == wal_like(3)

    # a damaged archive must stop recovery, not end it early
    stored = next((repo.path / "wal").rglob(f"{SEGMENT}.zst"))
    stored.write_bytes(stored.read_bytes()[:1000])
    broken = dbamgr("wal", "fetch", "--repo", str(repo.path), SEGMENT, str(target))
    assert broken.returncode == FETCH_ERROR_EXIT > 125
    assert "cannot restore" in broken.stderr


def test_a_push_killed_during_the_copy_leaves_no_file_under_the_final_name(
    repo: Repository, tmp_path: Path
) -> None:
    assert repo.path is not None
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dbamgr",
            "wal",
            "push",
            "--repo",
            str(repo.path),
            str(fifo),
            SEGMENT,
        ],
        stderr=subprocess.PIPE,
    )
    data = wal_like(5)
    with fifo.open("wb") as writer:
        writer.write(data[: SIZE // 2])
        writer.flush()
        # wait until the copy is under way: its temporary file has content
        deadline = time.monotonic() + 30
        while True:
            partial = [
                p for p in (repo.path / "wal").rglob("*.tmp.*") if p.stat().st_size
            ]
            if partial:
                break
            assert time.monotonic() < deadline, "the push never started copying"
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert not list((repo.path / "wal").rglob(SEGMENT))
    assert SEGMENT not in " ".join(repo.storage.list("wal"))

    # PostgreSQL retries: the next push completes
    source = tmp_path / SEGMENT
    source.write_bytes(data)
    assert not push_wal(repo, source, SEGMENT).already_archived
    restored = tmp_path / "restored"
    fetch_wal(repo, SEGMENT, restored)
    assert restored.read_bytes() == data
