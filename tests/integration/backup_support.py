"""Helpers shared by the backup tests: an archiving cluster and its repository."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from dbamgr.backup.archive import archive_settings, grant_program_access
from dbamgr.backup.repository import Repository, open_repository
from dbamgr.server import LocalCluster, find_binaries, temporary_cluster
from dbamgr.server.binaries import PgBinaries


@dataclass
class Archived:
    """A running cluster that archives into *repo*."""

    cluster: LocalCluster
    repo: Repository
    binaries: PgBinaries

    @property
    def url(self) -> str:
        return self.cluster.url()

    def sql(self, query: str, params: list[object] | None = None) -> list[tuple]:
        with self.cluster.connect() as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def switch_and_wait(self, timeout: float = 60.0) -> None:
        """Close the current WAL segment and wait until it is archived."""
        switch_and_wait(self.cluster, timeout)


def switch_and_wait(cluster: LocalCluster, timeout: float = 60.0) -> None:
    with cluster.connect() as conn:
        row = conn.execute("SELECT pg_walfile_name(pg_switch_wal() - 1)").fetchone()
        assert row is not None
        wanted = str(row[0])
        deadline = time.monotonic() + timeout
        while True:
            done = conn.execute(
                "SELECT last_archived_wal FROM pg_stat_archiver"
            ).fetchone()
            if done and done[0] and str(done[0]).split(".")[0] >= wanted:
                return
            assert time.monotonic() < deadline, f"{wanted} was not archived"
            time.sleep(0.1)


@contextlib.contextmanager
def reachable_dir() -> Iterator[Path]:
    """A temporary directory the server's user can reach.

    pytest's own temporary directories live under /tmp/pytest-of-<user>, which
    every pytest run (other runs on the machine included) resets to 0700; the
    server's user, which runs archive_command, could then lose its way in.
    """
    path = Path(tempfile.mkdtemp(prefix="dbamgr-test-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def archived_cluster(
    repo_path: Path, *, compression: str = "none", **extra: object
) -> Iterator[Archived]:
    """A throwaway cluster archiving into a new repository at *repo_path*."""
    binaries = find_binaries()
    repo = open_repository(repo_path, create=True)
    settings: dict[str, object] = dict(
        archive_settings(
            repo_path, compression=compression, timeout=0, major=binaries.major
        )
    )
    settings.pop("archive_timeout")
    # An autovacuum ANALYZE commits a transaction: one that lands while a backup
    # counts rows makes those counts inexact, which the tests check they are not.
    settings["autovacuum"] = False
    settings |= extra
    with temporary_cluster(settings, binaries=binaries) as cluster:  # type: ignore[arg-type]
        grant_program_access(cluster.user)
        yield Archived(cluster, repo, binaries)
