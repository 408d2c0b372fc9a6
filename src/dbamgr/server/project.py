"""The project's own local server, under ``.dbamgr/server/``."""

from __future__ import annotations

from dbamgr.config import Project
from dbamgr.server.binaries import find_binaries
from dbamgr.server.cluster import LocalCluster


def project_cluster(project: Project) -> LocalCluster:
    """The local cluster configured by the project's ``[server]`` section."""
    settings = project.config.server
    return LocalCluster(
        project.server_dir,
        binaries=find_binaries(settings.bin_dir),
        port=settings.port,
        settings=settings.settings,
        run_as=settings.run_as,
    )
