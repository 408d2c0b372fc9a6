"""Local PostgreSQL servers: the project's default server and throwaway clusters.

>>> with temporary_cluster({"wal_level": "replica"}) as cluster:
...     with scratch_database(cluster) as url:
...         ...
"""

from dbamgr.server.binaries import PgBinaries, find_binaries
from dbamgr.server.cluster import ClusterStatus, LocalCluster, free_port
from dbamgr.server.project import project_cluster
from dbamgr.server.scratch import scratch_database, scratch_name, temporary_cluster

__all__ = [
    "ClusterStatus",
    "LocalCluster",
    "PgBinaries",
    "find_binaries",
    "free_port",
    "project_cluster",
    "scratch_database",
    "scratch_name",
    "temporary_cluster",
]
