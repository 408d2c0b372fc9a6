from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest

from dbamgr.config import load_project
from dbamgr.errors import ServerError
from dbamgr.server import (
    LocalCluster,
    find_binaries,
    project_cluster,
    scratch_database,
    temporary_cluster,
)
from dbamgr.target import resolve_target

SYSTEM_PG15 = Path("/usr/lib/postgresql/15/bin")


def postgres_processes(directory: Path) -> list[str]:
    """Live (not zombie) postgres processes whose command line names *directory*."""
    out = subprocess.run(
        ["ps", "-ww", "-eo", "stat=,args="], capture_output=True, text=True, check=True
    ).stdout
    return [
        line
        for line in out.splitlines()
        if str(directory) in line and not line.lstrip().startswith("Z")
    ]


def test_temporary_cluster_applies_settings_and_leaves_nothing() -> None:
    with temporary_cluster({"wal_level": "replica", "archive_mode": "on"}) as cluster:
        directory = cluster.directory
        with cluster.connect() as conn:
            settings = dict(
                conn.execute(
                    "SELECT name, setting FROM pg_settings "
                    "WHERE name IN ('wal_level', 'archive_mode', 'listen_addresses')"
                ).fetchall()
            )
        assert settings == {
            "wal_level": "replica",
            "archive_mode": "on",
            "listen_addresses": "127.0.0.1",
        }
        assert postgres_processes(directory)
    assert not directory.exists()
    assert postgres_processes(directory) == []


def test_two_clusters_run_at_once_on_their_own_ports() -> None:
    with temporary_cluster() as first, temporary_cluster() as second:
        assert first.port != second.port
        for cluster in (first, second):
            with cluster.connect() as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)


def test_start_and_stop_are_idempotent(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path / "srv", durable=False)
    try:
        cluster.start()
        pid = cluster.status().pid
        cluster.start()
        assert cluster.status().pid == pid
        assert cluster.stop() is True
        assert cluster.stop() is False
        assert not cluster.status().running
        cluster.start()
        assert cluster.status().running
    finally:
        cluster.remove()
    assert postgres_processes(tmp_path / "srv") == []


def test_scratch_database_is_a_clone_and_is_dropped(pg_cluster: LocalCluster) -> None:
    with pg_cluster.connect() as conn:
        conn.execute("CREATE DATABASE clone_source")
    with psycopg.connect(pg_cluster.url("clone_source"), autocommit=True) as conn:
        conn.execute("CREATE TABLE marker (id int)")
    try:
        with scratch_database(pg_cluster, template="clone_source") as url:
            name = url.rsplit("/", 1)[1]
            with psycopg.connect(url) as conn:
                assert conn.execute("SELECT to_regclass('marker')").fetchone() == (
                    "marker",
                )
        assert not pg_cluster.database_exists(name)
    finally:
        pg_cluster.drop_database("clone_source")


def test_project_server_starts_on_demand(tmp_path: Path) -> None:
    (tmp_path / "dbamgr.toml").write_text("")
    project = load_project(tmp_path)
    cluster = project_cluster(project)
    try:
        assert not cluster.running
        target = resolve_target(project, environ={})
        assert target.local
        assert cluster.running
        assert (tmp_path / ".dbamgr" / "server" / "data" / "PG_VERSION").exists()
        with psycopg.connect(target.url) as conn:
            row = conn.execute("SELECT current_database()").fetchone()
        assert row == (project.database_name,)
    finally:
        cluster.remove()


def test_data_directory_of_another_version_is_refused(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path / "srv", durable=False)
    cluster.initialize()
    (cluster.data_dir / "PG_VERSION").write_text("13\n")
    with pytest.raises(ServerError, match="created by PostgreSQL 13"):
        cluster.start()


def test_missing_bin_dir_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DBAMGR_PG_BIN_DIR", raising=False)
    with pytest.raises(ServerError, match="holds no postgres program"):
        find_binaries(tmp_path)


@pytest.mark.skipif(
    not (SYSTEM_PG15 / "postgres").exists(), reason="Debian's PostgreSQL 15 is absent"
)
def test_a_system_postgresql_can_be_chosen() -> None:
    binaries = find_binaries(SYSTEM_PG15)
    assert binaries.major == 15
    with temporary_cluster(binaries=binaries) as cluster:
        with cluster.connect() as conn:
            row = conn.execute("SHOW server_version_num").fetchone()
        assert row is not None and row[0].startswith("15")


@pytest.mark.skipif(os.geteuid() != 0, reason="only root needs a server user")
def test_as_root_the_server_runs_as_an_unprivileged_user() -> None:
    with temporary_cluster() as cluster:
        owner = cluster.data_dir.stat().st_uid
        assert owner != 0
        assert cluster.status().pid is not None
        stat = Path(f"/proc/{cluster.status().pid}/status").read_text()
        uid_line = next(line for line in stat.splitlines() if line.startswith("Uid:"))
        assert int(uid_line.split()[1]) == owner


def test_psql_is_found_next_to_the_server() -> None:
    binaries = find_binaries()
    assert shutil.which(str(binaries.path("psql")))
