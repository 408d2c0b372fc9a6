"""The lock trace of verify: what each statement locks and rewrites, in and out of
a transaction, whoever the migration runs as."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from tests.conftest import ProjectFactory

from dbamgr.cli import cli
from dbamgr.server import LocalCluster
from dbamgr.verify import MigrationCheck, TableLock, verify

ROLE = "dbamgr_trace_app"


@pytest.fixture
def project(project_files: ProjectFactory, pg_cluster: LocalCluster) -> ProjectFactory:
    """A project with a users table and 2,000 seeded rows, on the session's
    cluster."""
    project_files.write_config(f'[server]\ndata_dir = "{pg_cluster.directory}"\n')
    project_files.add(
        "1",
        "users",
        "CREATE TABLE users (id bigint PRIMARY KEY, email text, age int);\n"
        "CREATE INDEX users_email ON users (email);\n"
        "CREATE VIEW named AS SELECT id, email FROM users WHERE email IS NOT NULL;",
        "DROP VIEW named;\nDROP TABLE users;",
    )
    project_files.seed(
        "users.sql",
        "INSERT INTO users (id, email, age) "
        "SELECT g, g || '@example.com', g % 90 FROM generate_series(1, 2000) g;",
    )
    return project_files


@pytest.fixture
def app_role(pg_cluster: LocalCluster) -> Iterator[str]:
    """A role of the cluster for migrations that SET ROLE, dropped afterwards."""
    with pg_cluster.connect() as conn:
        conn.execute(f"DROP ROLE IF EXISTS {ROLE}")
        conn.execute(f"CREATE ROLE {ROLE}")
    yield ROLE
    with pg_cluster.connect() as conn:
        for name in conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'dbamgr_verify%'"
        ).fetchall():
            # verify drops its scratch databases; a failed test may leave one
            conn.execute(f'DROP DATABASE IF EXISTS "{name[0]}" WITH (FORCE)')
        conn.execute(f"DROP ROLE IF EXISTS {ROLE}")


def lock_on(check: MigrationCheck, phase: str, relation: str) -> TableLock:
    trace = check.up if phase == "up" else check.down
    assert trace is not None
    return next(lock for lock in trace.locks if lock.relation == relation)


@pytest.mark.parametrize("capture", [True, False], ids=["captured", "scanned"])
def test_a_migration_that_switches_role_is_verified(
    project: ProjectFactory, app_role: str, capture: bool
) -> None:
    project.add(
        "2",
        "grant",
        f"GRANT CREATE ON SCHEMA public TO {app_role};\n"
        f"GRANT SELECT ON users TO {app_role};",
        f"REVOKE SELECT ON users FROM {app_role};\n"
        f"REVOKE CREATE ON SCHEMA public FROM {app_role};",
    )
    project.add(
        "3",
        "as_app",
        f"SET ROLE {app_role};\nCREATE TABLE notes (id int);\n"
        "CREATE INDEX notes_id ON notes (id);\nRESET ROLE;",
        f"SET ROLE {app_role};\nDROP TABLE notes;\nRESET ROLE;",
    )
    report = verify(project.project, capture=capture)
    assert [m.status for m in report.migrations] == ["passed"] * 3, [
        m.failures for m in report.migrations
    ]
    assert report.changes_found_by == ("captured" if capture else "scanned")
    check = report.migrations[2]
    assert check.up is not None
    assert [trace.index for trace in check.up.statements] == [1, 2, 3, 4]


def test_reindex_of_an_index_counts_against_its_table(project: ProjectFactory) -> None:
    project.add(
        "2",
        "reindex",
        "REINDEX INDEX users_email;",
        "SELECT 1;",
    )
    check = verify(project.project).migrations[1]
    lock = lock_on(check, "up", "public.users")
    assert lock.mode == "AccessExclusiveLock"
    assert lock.via == "public.users_email"
    assert lock.blocks_reads


def test_replacing_a_view_reports_its_lock(project: ProjectFactory) -> None:
    project.add(
        "2",
        "view",
        "CREATE OR REPLACE VIEW named AS "
        "SELECT id, email FROM users WHERE email IS NOT NULL AND id > 0;",
        "CREATE OR REPLACE VIEW named AS "
        "SELECT id, email FROM users WHERE email IS NOT NULL;",
    )
    check = verify(project.project).migrations[1]
    assert check.status == "passed", check.failures
    assert lock_on(check, "up", "public.named").mode == "AccessExclusiveLock"
    assert lock_on(check, "down", "public.named").mode == "AccessExclusiveLock"


def test_a_rewrite_outside_a_transaction_is_seen_and_is_no_drop(
    project: ProjectFactory,
) -> None:
    project.add(
        "2",
        "bigint",
        "-- dbamgr:no-transaction\nALTER TABLE users ALTER COLUMN age TYPE bigint;",
        "-- dbamgr:no-transaction\nALTER TABLE users ALTER COLUMN age TYPE integer;",
    )
    check = verify(project.project).migrations[1]
    assert check.status == "passed", check.failures
    assert check.up is not None
    (statement,) = check.up.statements
    assert statement.rewrites == ["public.users"]
    assert statement.dropped == []
    lock = lock_on(check, "up", "public.users")
    assert lock.rewritten and not lock.dropped


def test_truncate_is_reported_as_truncated_not_rewritten(
    project: ProjectFactory,
) -> None:
    project.add(
        "2",
        "truncate",
        "-- dbamgr:data-loss the test empties the table\nTRUNCATE users;",
        "SELECT 1;",
    )
    check = verify(project.project).migrations[1]
    assert check.up is not None
    (statement,) = check.up.statements
    assert statement.truncated == ["public.users"]
    assert statement.rewrites == []
    lock = lock_on(check, "up", "public.users")
    assert lock.truncated and not lock.rewritten


def test_create_index_concurrently_takes_only_share_update_exclusive(
    project: ProjectFactory,
) -> None:
    # The indexed expression sleeps a little per row, so that the build lasts
    # long enough (two scans of 2,000 rows) for the sampler to see its lock:
    # SHARE UPDATE EXCLUSIVE, and nothing stronger.
    project.add(
        "2",
        "slow_function",
        "CREATE FUNCTION slow_age(a int) RETURNS int IMMUTABLE LANGUAGE plpgsql\n"
        "AS $$ BEGIN PERFORM pg_sleep(0.0001); RETURN a; END $$;",
        "DROP FUNCTION slow_age(int);",
    )
    project.add(
        "3",
        "concurrent_index",
        "-- dbamgr:no-transaction\n"
        "CREATE INDEX CONCURRENTLY users_age ON users (slow_age(age));",
        "-- dbamgr:no-transaction\nDROP INDEX CONCURRENTLY users_age;",
    )
    check = verify(project.project).migrations[2]
    assert check.status == "passed", check.failures
    assert check.up is not None
    assert all(trace.sampled for trace in check.up.statements)
    lock = lock_on(check, "up", "public.users")
    assert lock.mode == "ShareUpdateExclusiveLock"
    assert not lock.blocks_writes


def test_a_sequence_is_reported_with_the_table_of_its_column(
    project: ProjectFactory,
) -> None:
    create = 'CREATE TABLE "Tags" (id serial PRIMARY KEY, "Label" text);'
    project.add("2", "tags", create, 'DROP TABLE "Tags";')
    project.add("3", "drop_tags", 'DROP TABLE "Tags";', create)
    report = verify(project.project)
    assert report.ok, [m.failures for m in report.failed]
    check = report.migrations[2]
    sequence = lock_on(check, "up", 'public."Tags_id_seq"')
    assert sequence.owner == 'public."Tags"'
    assert lock_on(check, "up", 'public."Tags"').dropped
    result = CliRunner().invoke(cli, ["-C", str(project.root), "verify"])
    lines = [line for line in result.output.splitlines() if "up: public." in line]
    assert lines == ['    up: public."Tags" ACCESS EXCLUSIVE (line 1), dropped']
