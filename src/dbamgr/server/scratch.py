"""Throwaway clusters and scratch databases, for tests, verify, drills and advice."""

from __future__ import annotations

import atexit
import contextlib
import logging
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

from dbamgr.server.binaries import PgBinaries
from dbamgr.server.cluster import LocalCluster, SettingValue

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def temporary_cluster(
    settings: Mapping[str, SettingValue] | None = None,
    *,
    binaries: PgBinaries | None = None,
    run_as: str = "dbamgr",
    durable: bool = False,
    parent: Path | None = None,
) -> Iterator[LocalCluster]:
    """Start a cluster in a new temporary directory; stop and delete it on exit.

    Unless *durable*, the cluster runs without fsync: fast, and lost on a crash,
    which is what a throwaway cluster is for. The cluster is removed even if the
    process exits without leaving the ``with`` block normally.
    """
    directory = Path(tempfile.mkdtemp(prefix="dbamgr-cluster-", dir=parent))
    cluster = LocalCluster(
        directory, binaries=binaries, settings=settings, run_as=run_as, durable=durable
    )

    def cleanup() -> None:
        try:
            cluster.remove()
        except Exception:  # cleanup at exit must not mask the original error
            logger.warning("could not remove the temporary cluster in %s", directory)
            shutil.rmtree(directory, ignore_errors=True)

    atexit.register(cleanup)
    try:
        cluster.start()
        yield cluster
    finally:
        cleanup()
        atexit.unregister(cleanup)


def scratch_name(prefix: str = "scratch") -> str:
    """A fresh database name that no other scratch database will take."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


@contextlib.contextmanager
def scratch_database(
    cluster: LocalCluster, *, template: str | None = None, prefix: str = "scratch"
) -> Iterator[str]:
    """Create a database on *cluster* (a clone of *template* if given) for the
    duration of the block, and yield its URL. It is dropped on exit."""
    name = scratch_name(prefix)
    url = cluster.create_database(name, template=template)
    try:
        yield url
    finally:
        cluster.drop_database(name)
