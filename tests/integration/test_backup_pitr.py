"""Point-in-time recovery on real clusters: time, restore point, LSN, timelines."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from tests.integration.backup_support import (
    Archived,
    archived_cluster,
    reachable_dir,
    switch_and_wait,
)

from dbamgr.backup.base import take_base_backup
from dbamgr.backup.errors import BackupError, BackupNotFound
from dbamgr.backup.restore import restore_backup
from dbamgr.backup.target import RestoreTarget
from dbamgr.cli import cli
from dbamgr.server import LocalCluster


@pytest.fixture(scope="module")
def archived() -> Iterator[Archived]:
    with reachable_dir() as work, archived_cluster(work / "repo") as source:
        source.sql("CREATE TABLE events (id int PRIMARY KEY, note text)")
        source.sql(
            "INSERT INTO events SELECT g, 'before' FROM generate_series(1, 100) g"
        )
        take_base_backup(source.repo, source.url, source.binaries)
        yield source


@pytest.fixture
def work() -> Iterator[Path]:
    with reachable_dir() as path:
        yield path


def insert_with_commit_times(source: Archived, ids: range) -> dict[int, datetime]:
    """Insert one row per transaction; return when each had committed."""
    committed = {}
    with source.cluster.connect() as conn:
        for row_id in ids:
            conn.execute("INSERT INTO events VALUES (%s, 'pitr')", [row_id])
            moment = conn.execute("SELECT clock_timestamp()").fetchone()
            assert moment is not None
            committed[row_id] = moment[0]
            time.sleep(0.05)
    return committed


def ids_in(cluster: LocalCluster) -> set[int]:
    with cluster.connect() as conn:
        return {r[0] for r in conn.execute("SELECT id FROM events").fetchall()}


def restore_started(
    source: Archived, target_dir: Path, target: RestoreTarget, **options: object
) -> LocalCluster:
    _report, cluster = restore_backup(
        source.repo,
        source.binaries,
        target_dir,
        target,
        start=True,
        **options,  # type: ignore[arg-type]
    )
    assert cluster is not None
    return cluster


def test_restore_to_a_time_finds_exactly_the_rows_committed_before_it(
    archived: Archived, work: Path
) -> None:
    committed = insert_with_commit_times(archived, range(1000, 1010))
    archived.switch_and_wait()
    # halfway between the commits of rows 1004 and 1005
    target = committed[1004] + (committed[1005] - committed[1004]) / 2
    cluster = restore_started(archived, work / "restored", RestoreTarget(time=target))
    try:
        found = ids_in(cluster)
        assert {i for i in found if i >= 1000} == set(range(1000, 1005))
        assert set(range(1, 101)) <= found
        with cluster.connect() as conn:
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
    finally:
        cluster.remove()


def test_restore_to_an_lsn_includes_what_was_written_before_it(
    archived: Archived, work: Path
) -> None:
    archived.sql("INSERT INTO events VALUES (2000, 'lsn')")
    lsn = archived.sql("SELECT pg_current_wal_insert_lsn()::text")[0][0]
    archived.sql("INSERT INTO events VALUES (2001, 'after lsn')")
    archived.switch_and_wait()
    cluster = restore_started(archived, work / "restored", RestoreTarget(lsn=lsn))
    try:
        found = ids_in(cluster)
        assert 2000 in found and 2001 not in found
    finally:
        cluster.remove()


def test_restore_to_a_named_restore_point_from_the_command_line(
    archived: Archived, work: Path
) -> None:
    project = work / "project"
    project.mkdir()
    (project / "dbamgr.toml").write_text(
        f'[backup]\nrepository = "{archived.repo.path}"\n'
    )
    runner = CliRunner()
    env = {"DATABASE_URL": archived.url}
    archived.sql("INSERT INTO events VALUES (3000, 'before point')")
    result = runner.invoke(
        cli, ["-C", str(project), "restore-point", "before_release", "--json"], env=env
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["name"] == "before_release"
    archived.sql("INSERT INTO events VALUES (3001, 'after point')")
    archived.switch_and_wait()

    target_dir = work / "restored"
    result = runner.invoke(
        cli,
        [
            "-C",
            str(project),
            "restore",
            "--to-name",
            "before_release",
            "--target-dir",
            str(target_dir),
            "--start",
            "--json",
        ],
        env=env,
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["started"] and report["settings"]["recovery_target_name"]
    with psycopg.connect(report["url"]) as conn:
        found = {r[0] for r in conn.execute("SELECT id FROM events").fetchall()}
    LocalCluster(Path(report["log_file"]).parent, data_dir=target_dir).stop()
    assert 3000 in found and 3001 not in found


def test_a_target_past_the_archive_is_an_error_and_leaves_nothing(
    archived: Archived, work: Path
) -> None:
    lsn = archived.sql("SELECT (pg_current_wal_lsn() + 1000000000)::text")[0][0]
    with pytest.raises(BackupError, match="past the end of the archived WAL"):
        restore_backup(
            archived.repo, archived.binaries, work / "x", RestoreTarget(lsn=lsn)
        )
    assert not (work / "x").exists()

    # a moment whose WAL is not archived yet: recovery cannot prove it reached it
    archived.sql("INSERT INTO events VALUES (4000, 'unarchived')")
    moment = archived.sql("SELECT clock_timestamp()")[0][0]
    with pytest.raises(BackupError, match=r"not archived yet|does not reach"):
        restore_backup(
            archived.repo,
            archived.binaries,
            work / "y",
            RestoreTarget(time=moment),
            start=True,
        )
    assert not (work / "y").exists()


def test_a_time_before_every_backup_is_refused(archived: Archived, work: Path) -> None:
    with pytest.raises(BackupNotFound, match="no base backup ends before"):
        restore_backup(
            archived.repo,
            archived.binaries,
            work / "x",
            RestoreTarget(time=datetime(2000, 1, 1).astimezone()),
        )


def test_restore_refuses_non_empty_and_running_data_directories(
    archived: Archived, work: Path
) -> None:
    busy = work / "busy"
    busy.mkdir()
    (busy / "file").write_text("mine")
    with pytest.raises(BackupError, match="not empty"):
        restore_backup(archived.repo, archived.binaries, busy, RestoreTarget())
    assert (busy / "file").read_text() == "mine"
    with pytest.raises(BackupError, match="running PostgreSQL"):
        restore_backup(
            archived.repo, archived.binaries, archived.cluster.data_dir, RestoreTarget()
        )


def test_restore_across_a_timeline_switch(archived: Archived, work: Path) -> None:
    committed = insert_with_commit_times(archived, range(5000, 5004))
    archived.switch_and_wait()
    fork_time = committed[5001] + (committed[5002] - committed[5001]) / 2

    # restore to the fork, promote (timeline 2) and keep archiving from there
    branch = restore_started(
        archived, work / "branch", RestoreTarget(time=fork_time), keep_archiving=True
    )
    try:
        with branch.connect() as conn:
            timeline = conn.execute(
                "SELECT timeline_id FROM pg_control_checkpoint()"
            ).fetchone()
            conn.execute("CHECKPOINT")
        new_rows = {}
        with branch.connect() as conn:
            for row_id in (6000, 6001, 6002):
                conn.execute("INSERT INTO events VALUES (%s, 'branch')", [row_id])
                new_rows[row_id] = conn.execute("SELECT clock_timestamp()").fetchone()[
                    0
                ]
                time.sleep(0.05)
        switch_and_wait(branch)
    finally:
        branch.stop()
    assert timeline is not None

    target = new_rows[6001] + (new_rows[6002] - new_rows[6001]) / 2
    report, cluster = restore_backup(
        archived.repo,
        archived.binaries,
        work / "second",
        RestoreTarget(time=target),
        start=True,
    )
    assert cluster is not None
    try:
        assert report.timeline >= 2
        found = ids_in(cluster)
        assert {5000, 5001, 6000, 6001} <= found
        assert not {5002, 5003, 6002} & found
    finally:
        cluster.remove()
