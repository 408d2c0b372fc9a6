"""Shared fixtures: projects on disk, and (for integration tests) a real server.

One throwaway PostgreSQL cluster serves the whole session, started through
dbamgr's own server API. Each test gets a fresh database cloned from a template.
Set DBAMGR_PG_BIN_DIR to run the suite against another PostgreSQL installation.
"""

from __future__ import annotations

import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from dbamgr.config import Project, load_project
from dbamgr.server import LocalCluster, scratch_name, temporary_cluster
from dbamgr.target import Target

TEMPLATE = "dbamgr_test_template"


class ProjectFactory:
    """Builds a project directory with a dbamgr.toml and migrations."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.migrations = root / "migrations"
        self.migrations.mkdir(parents=True, exist_ok=True)
        self.config_text = ""
        self.write_config()

    def write_config(self, extra: str = "", **migration_settings: str) -> Project:
        """Write dbamgr.toml: test-friendly [migrations] settings, overridden by
        *migration_settings*, then *extra* TOML."""
        settings = {
            "dir": "migrations",
            "lock_timeout": "2s",
            "retry_delay": "50ms",
            "lock_wait": "5s",
        } | migration_settings
        lines = ["[migrations]"] + [f'{k} = "{v}"' for k, v in settings.items()]
        self.config_text = "\n".join(lines) + "\n" + textwrap.dedent(extra)
        (self.root / "dbamgr.toml").write_text(self.config_text)
        return self.project

    @property
    def project(self) -> Project:
        return load_project(self.root)

    def seed(self, name: str, text: str) -> Path:
        """Write the seed file *name* (seeds/*.sql, verify's test data)."""
        path = self.root / "seeds" / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
        return path

    def add(
        self,
        version: str,
        name: str,
        up: str,
        down: str | None = "",
    ) -> Path:
        """Add a migration in the directory layout; *down* None: no down.sql."""
        folder = self.migrations / f"{version}_{name}"
        folder.mkdir()
        (folder / "up.sql").write_text(textwrap.dedent(up))
        if down is not None:
            (folder / "down.sql").write_text(textwrap.dedent(down))
        return folder


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[[], ProjectFactory]:
    counter = iter(range(1000))

    def factory() -> ProjectFactory:
        return ProjectFactory(tmp_path / f"project{next(counter)}")

    return factory


@pytest.fixture
def project_files(make_project: Callable[[], ProjectFactory]) -> ProjectFactory:
    return make_project()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[LocalCluster]:
    """The session's throwaway PostgreSQL cluster."""
    with temporary_cluster({"max_connections": 200}) as cluster:
        cluster.create_database(TEMPLATE)
        yield cluster


@pytest.fixture
def db_url(pg_cluster: LocalCluster) -> Iterator[str]:
    """A fresh, empty database for one test, dropped afterwards."""
    name = scratch_name("test")
    url = pg_cluster.create_database(name, template=TEMPLATE)
    yield url
    pg_cluster.drop_database(name)


@pytest.fixture
def target(db_url: str) -> Target:
    return Target("test", db_url)


def sleeping_session(
    url: str, *, application: str = "", tries: int = 200
) -> int | None:
    """The pid of a session of the database at *url* that is running pg_sleep
    (a migration a test holds at work), waiting up to *tries* × 50 ms for one;
    *application* narrows to application names that start with it."""
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(tries):
            row = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE query LIKE '%%pg_sleep%%' "
                "AND application_name LIKE %s AND pid <> pg_backend_pid()",
                [f"{application}%"],
            ).fetchone()
            if row:
                return int(row[0])
            threading.Event().wait(0.05)
    return None
