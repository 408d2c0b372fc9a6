"""verify, retention, drills, incremental and logical backups on real clusters."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from tests.integration.backup_support import Archived, archived_cluster, reachable_dir

from dbamgr.backup.base import INCREMENTAL_MAJOR, take_base_backup
from dbamgr.backup.drill import run_drill
from dbamgr.backup.errors import BackupError
from dbamgr.backup.heartbeat import write_heartbeat
from dbamgr.backup.logical import restore_logical, take_logical_backup
from dbamgr.backup.repository import BackupInfo
from dbamgr.backup.restore import restore_backup
from dbamgr.backup.retention import expire
from dbamgr.backup.target import RestoreTarget
from dbamgr.backup.verify import verify
from dbamgr.backup.wal import index_wal
from dbamgr.backup.walnames import parse_lsn, segment_of
from dbamgr.server import find_binaries


@pytest.fixture
def work() -> Iterator[Path]:
    with reachable_dir() as path:
        yield path


@pytest.fixture
def archived(work: Path) -> Iterator[Archived]:
    with archived_cluster(work / "repo", compression="zstd") as source:
        source.sql(
            "CREATE TABLE accounts (id int PRIMARY KEY, owner text UNIQUE, balance int)"
        )
        source.sql(
            "INSERT INTO accounts SELECT g, 'owner ' || g, g * 10"
            " FROM generate_series(1, 2000) g"
        )
        yield source


def corrupt(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)
    path.write_bytes(bytes(data))


def segments_between(source: Archived, info: BackupInfo) -> list[str]:
    index = index_wal(source.repo, info.segment_size or 0)
    first = segment_of(parse_lsn(info.start_lsn or ""), index.segment_size)
    return sorted(
        key
        for name, key in index.keys.items()
        if len(name) == 24 and int(name[16:], 16) >= first
    )


def test_verify_catches_a_corrupted_file_and_a_missing_wal_segment(
    archived: Archived,
) -> None:
    good = take_base_backup(archived.repo, archived.url, archived.binaries)
    archived.sql("UPDATE accounts SET balance = balance + 1")
    archived.switch_and_wait()
    damaged = take_base_backup(archived.repo, archived.url, archived.binaries)
    archived.switch_and_wait()
    assert verify(archived.repo, archived.binaries).ok

    assert archived.repo.path is not None
    corrupt(next(archived.repo.data_dir(damaged.id).glob("base.tar*")))
    report = verify(archived.repo, archived.binaries)
    verdicts = {check.id: check for check in report.backups}
    assert verdicts[good.id].ok
    assert not verdicts[damaged.id].ok
    assert "checksum" in " ".join(verdicts[damaged.id].problems)

    # a segment between the first backup and the newest goes missing
    keys = segments_between(archived, good)
    gone = keys[len(keys) // 2]
    archived.repo.storage.remove(gone)
    check = verify(archived.repo, archived.binaries, good.id).backups[0]
    assert not check.ok
    assert (
        check.wal is not None
        and gone.rsplit("/", 1)[1].split(".")[0] in check.wal.missing
    )
    with pytest.raises(BackupError, match="missing from the archive"):
        restore_backup(
            archived.repo,
            archived.binaries,
            archived.repo.path.parent / "r",
            RestoreTarget(),
            backup_id=good.id,
        )


def test_retention_never_removes_wal_a_kept_backup_needs(
    archived: Archived, work: Path
) -> None:
    backups = []
    for round_ in range(3):
        archived.sql("UPDATE accounts SET balance = balance + %s", [round_])
        archived.switch_and_wait()
        backups.append(take_base_backup(archived.repo, archived.url, archived.binaries))
    archived.switch_and_wait()
    needed_before = segments_between(archived, backups[1])

    dry = expire(archived.repo, keep_full=2, keep_days=None, dry_run=True)
    assert set(dry.remove) == {backups[0].id}
    assert len(archived.repo.backups()) == 3

    plan = expire(archived.repo, keep_full=2, keep_days=None)
    assert set(plan.keep) == {backups[1].id, backups[2].id}
    assert plan.wal_removed, "WAL older than the oldest kept backup should go"
    remaining = set(archived.repo.storage.list("wal"))
    assert set(needed_before) <= remaining
    assert not set(plan.wal_removed) & set(needed_before)
    assert [b.id for b in archived.repo.backups()] == [backups[1].id, backups[2].id]
    assert verify(archived.repo, archived.binaries).ok

    _report, cluster = restore_backup(
        archived.repo,
        archived.binaries,
        work / "restored",
        RestoreTarget(),
        backup_id=backups[1].id,
        start=True,
    )
    assert cluster is not None
    try:
        with cluster.connect() as conn:
            assert conn.execute("SELECT count(*) FROM accounts").fetchone() == (2000,)
    finally:
        cluster.remove()


def test_a_drill_passes_on_a_good_backup_and_fails_on_a_corrupted_one(
    archived: Archived, work: Path
) -> None:
    scratch = work / "scratch"
    scratch.mkdir()
    info = take_base_backup(archived.repo, archived.url, archived.binaries)
    assert info.counts_exact and info.row_counts["postgres"]["public.accounts"] == 2000
    archived.sql("INSERT INTO accounts VALUES (5000, 'late', 1)")
    write_heartbeat(archived.url)
    archived.switch_and_wait()

    report = run_drill(
        archived.repo,
        archived.binaries,
        source_url=archived.url,
        rpo_target=3600,
        rto_target=600,
        scratch_parent=scratch,
    )
    assert report.ok, report.checks
    names = {check.name for check in report.checks}
    assert {
        "row counts in postgres",
        "amcheck on B-tree indexes",
        "RPO",
        "RTO",
    } <= names
    assert report.indexes_checked >= 2 and report.rpo_seconds is not None
    assert report.rto_seconds is not None and report.rto_seconds > 0
    assert list(scratch.iterdir()) == []
    assert archived.repo.storage.list("drills")

    # the source moves on; a too strict RPO target is missed
    write_heartbeat(archived.url)
    strict = run_drill(
        archived.repo,
        archived.binaries,
        source_url=archived.url,
        rpo_target=0.000001,
        scratch_parent=scratch,
    )
    assert not strict.ok
    assert [c.name for c in strict.checks if not c.ok] == ["RPO"]

    corrupt(next(archived.repo.data_dir(info.id).glob("base.tar*")))
    failed = run_drill(archived.repo, archived.binaries, scratch_parent=scratch)
    assert not failed.ok
    assert any(c.name == "restore" and not c.ok for c in failed.checks)
    assert list(scratch.iterdir()) == []


@pytest.mark.skipif(
    find_binaries().major < INCREMENTAL_MAJOR, reason="incremental backups need 17+"
)
def test_an_incremental_backup_is_restored_through_pg_combinebackup(
    work: Path,
) -> None:
    with archived_cluster(work / "repo", summarize_wal=True) as source:
        source.sql("CREATE TABLE items (id int PRIMARY KEY)")
        source.sql("INSERT INTO items SELECT generate_series(1, 500)")
        full = take_base_backup(source.repo, source.url, source.binaries)
        source.sql("INSERT INTO items SELECT generate_series(501, 800)")
        incremental = take_base_backup(
            source.repo, source.url, source.binaries, incremental=True
        )
        assert incremental.parent == full.id and incremental.kind == "incremental"
        assert incremental.size < full.size
        source.sql("INSERT INTO items SELECT generate_series(801, 900)")
        source.switch_and_wait()
        assert verify(source.repo, source.binaries).ok

        report, cluster = restore_backup(
            source.repo,
            source.binaries,
            work / "restored",
            RestoreTarget(lsn=incremental.stop_lsn),
            start=True,
        )
        assert cluster is not None
        try:
            assert report.chain == [full.id, incremental.id]
            with cluster.connect() as conn:
                count = conn.execute("SELECT count(*) FROM items").fetchone()
            assert count == (800,)
        finally:
            cluster.remove()
        plan = expire(source.repo, keep_full=1, keep_days=None, dry_run=True)
        assert set(plan.keep) == {full.id, incremental.id}


def test_a_logical_backup_restores_into_a_new_database_only(
    archived: Archived,
) -> None:
    archived.sql("CREATE ROLE auditor")
    archived.sql("CREATE DATABASE shop")
    with psycopg.connect(archived.cluster.url("shop"), autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY, total int)")
        conn.execute("INSERT INTO orders SELECT g, g FROM generate_series(1, 300) g")
        conn.execute("GRANT SELECT ON orders TO auditor")
    info = take_logical_backup(
        archived.repo, archived.url, archived.binaries, databases=["shop"], jobs=2
    )
    assert info.databases == ["shop"] and "globals.sql" in info.files
    assert verify(archived.repo, archived.binaries, info.id).ok

    with pytest.raises(BackupError, match="exists already"):
        restore_logical(
            archived.repo, archived.url, archived.binaries, backup_id=info.id
        )
    result = restore_logical(
        archived.repo,
        archived.url,
        archived.binaries,
        database="shop",
        into="shop_copy",
        with_globals=True,
    )
    assert result.databases == {"shop": "shop_copy"}
    with psycopg.connect(archived.cluster.url("shop_copy")) as conn:
        assert conn.execute("SELECT sum(total) FROM orders").fetchone() == (45150,)

    shutil.rmtree(archived.repo.data_dir(info.id) / "shop")
    with pytest.raises(BackupError):
        restore_logical(
            archived.repo,
            archived.url,
            archived.binaries,
            database="shop",
            into="shop_broken",
        )
    with archived.cluster.connect() as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_database WHERE datname = 'shop_broken'"
        ).fetchone()
    assert row == (0,)


def test_a_backup_whose_wal_is_not_archived_fails_and_leaves_nothing(
    work: Path,
) -> None:
    with archived_cluster(work / "repo", archive_command="false") as source:
        with pytest.raises(BackupError, match="did not reach the archive"):
            take_base_backup(source.repo, source.url, source.binaries, archive_wait=2)
        assert source.repo.backups() == []
        assert source.repo.path is not None
        assert list((source.repo.path / "backups").iterdir()) == []
