"""``dbamgr new``: the version it picks, whatever the clock says."""

from __future__ import annotations

from datetime import UTC, datetime

from click.testing import CliRunner
from tests.conftest import ProjectFactory

from dbamgr.cli import cli
from dbamgr.migrations import load_migrations, new_migration

CLOCK = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)


def test_new_takes_the_clocks_version_when_it_is_the_newest(
    project_files: ProjectFactory,
) -> None:
    project_files.add("20261203120000", "older", "SELECT 1;")
    created = new_migration(project_files.project, "add_priority", now=CLOCK)
    assert (created.version, created.after) == ("20261204093000", None)


def test_new_follows_a_migration_ahead_of_the_clock(
    project_files: ProjectFactory,
) -> None:
    project_files.add("20261205110000", "future", "SELECT 1;")
    created = new_migration(project_files.project, "add_priority", now=CLOCK)
    assert (created.version, created.after) == (
        "20261205110001",
        "20261205110000_future",
    )
    newest = load_migrations(project_files.migrations).migrations[-1]
    assert newest.ident == "20261205110001_add_priority"


def test_new_after_a_future_timestamp_stays_a_timestamp(
    project_files: ProjectFactory,
) -> None:
    project_files.add("20261231235959", "new_year", "SELECT 1;")
    created = new_migration(project_files.project, "add_priority", now=CLOCK)
    assert created.version == "20270101000000"


def test_new_after_a_longer_version_counts_one_up(
    project_files: ProjectFactory,
) -> None:
    project_files.add("202612051100001", "precise", "SELECT 1;")
    created = new_migration(project_files.project, "add_priority", now=CLOCK)
    assert created.version == "202612051100002"


def test_new_says_when_its_version_follows_the_newest_migration(
    project_files: ProjectFactory,
) -> None:
    project_files.add("29991231235958", "far_future", "SELECT 1;")
    args = ["-C", str(project_files.root), "new", "add_priority"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "29991231235959_add_priority" in result.output
    assert (
        'note: the clock is not past "29991231235958_far_future": version '
        "29991231235959 follows it, so that the new migration is the newest"
    ) in result.output
