"""Seed files as verify's test data: loaded when the schema takes them, never
half-loaded, and reported when they never load."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from tests.conftest import ProjectFactory

from dbamgr.cli import cli
from dbamgr.errors import UsageError
from dbamgr.server import LocalCluster
from dbamgr.verify import verify


@pytest.fixture
def project(project_files: ProjectFactory, pg_cluster: LocalCluster) -> ProjectFactory:
    project_files.write_config(f'[server]\ndata_dir = "{pg_cluster.directory}"\n')
    project_files.add(
        "1",
        "users",
        "CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL);",
        "DROP TABLE users;",
    )
    project_files.add(
        "2",
        "orgs",
        "CREATE TABLE orgs (id serial PRIMARY KEY,\n"
        "    owner_id int NOT NULL REFERENCES users (id));",
        "DROP TABLE orgs;",
    )
    project_files.add(
        "3",
        "plan",
        "CREATE TYPE plan AS ENUM ('free');\n"
        "ALTER TABLE orgs ADD COLUMN plan plan NOT NULL DEFAULT 'free';",
        "ALTER TABLE orgs DROP COLUMN plan;\nDROP TYPE plan;",
    )
    project_files.add(
        "4",
        "paid",
        "-- dbamgr:irreversible PostgreSQL cannot remove an enum label\n"
        "ALTER TYPE plan ADD VALUE 'paid';",
        None,
    )
    return project_files


def test_a_seed_of_several_tables_keeps_its_generated_keys(
    project: ProjectFactory,
) -> None:
    # users exists after migration 1, orgs only after 2: a first try that
    # failed on orgs must not have used up users' ids 1 to 3
    project.seed(
        "data.sql",
        "INSERT INTO users (email) VALUES ('a@x'), ('b@x'), ('c@x');\n"
        "INSERT INTO orgs (owner_id) VALUES (1), (3);\n",
    )
    report = verify(project.project)
    assert report.seeds_loaded == ["data.sql"]
    assert report.seed_problems == []
    assert report.ok, [m.failures for m in report.failed]


def test_a_seed_waits_for_the_enum_label_it_uses(project: ProjectFactory) -> None:
    project.seed("01_users.sql", "INSERT INTO users (email) VALUES ('a@x');")
    project.seed(
        "02_orgs.sql",
        "INSERT INTO orgs (owner_id, plan) SELECT id, 'paid' FROM users;",
    )
    report = verify(project.project)
    assert report.seeds_loaded == ["01_users.sql", "02_orgs.sql"]
    assert report.ok


def test_a_seed_that_never_loads_fails_verify_with_its_error(
    project: ProjectFactory,
) -> None:
    project.seed("01_users.sql", "INSERT INTO users (email) VALUES ('a@x');")
    project.seed("02_typo.sql", "\nINSERT INTO users (emial) VALUES ('b@x');")
    project.seed("03_gone.sql", "INSERT INTO nosuchtable VALUES (1);")
    report = verify(project.project)
    assert report.seeds_loaded == ["01_users.sql"]
    assert [m.status for m in report.migrations] == [
        "passed",
        "passed",
        "passed",
        "irreversible",
    ]
    assert not report.ok
    typo, gone = report.seed_problems
    assert typo.startswith("seed file 02_typo.sql was never loaded: ")
    assert typo.endswith(
        '02_typo.sql:2:20: column "emial" of relation "users" does not exist'
    )
    assert gone == "seed file 03_gone.sql was never loaded: no table nosuchtable exists"


def test_a_seed_with_a_syntax_error_is_refused_with_its_position(
    project: ProjectFactory,
) -> None:
    project.seed("bad.sql", "INSERT INTO users (email) VALUES ('a@x');\nINSRT 1;")
    with pytest.raises(UsageError) as error:
        verify(project.project)
    assert 'bad.sql:2:1: syntax error at or near "INSRT"' in error.value.message


def test_a_seed_that_breaks_a_constraint_stops_verify(project: ProjectFactory) -> None:
    project.seed("orgs.sql", "INSERT INTO users (email) VALUES (NULL);")
    with pytest.raises(UsageError) as error:
        verify(project.project)
    assert "orgs.sql:" in error.value.message
    assert 'null value in column "email"' in error.value.message


def test_a_seed_that_fits_only_the_last_schema_is_loaded(
    project: ProjectFactory,
) -> None:
    project.add("5", "tags", "CREATE TABLE tags (name text);", "DROP TABLE tags;")
    project.seed("tags.sql", "INSERT INTO tags VALUES ('x');")
    report = verify(project.project)
    assert report.seeds_loaded == ["tags.sql"]
    assert report.ok


def test_migrations_checked_against_empty_tables_are_named(
    project: ProjectFactory,
) -> None:
    # the seed needs orgs, which migration 2 brings: migration 2 is checked
    # while users is still empty, and the report must say so
    project.seed(
        "data.sql",
        "INSERT INTO users (email) VALUES ('a@x');\n"
        "INSERT INTO orgs (owner_id) VALUES (1);\n",
    )
    report = verify(project.project)
    assert report.ok
    assert [m.rows_checked for m in report.migrations] == [None, 0, 2, 2]
    assert [m.ident for m in report.checked_empty] == ["2_orgs"]
    result = CliRunner().invoke(cli, ["-C", str(project.root), "verify"])
    assert (
        "the data check found no rows before 1 migration(s) (the seed data loads "
        "later): a down that deletes rows there goes unseen" in result.output
    )
