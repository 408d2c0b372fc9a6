from __future__ import annotations

import json
import re
import shutil

import psycopg
import pytest
from click.testing import CliRunner
from tests.conftest import ProjectFactory

from dbamgr import migrations
from dbamgr.cli import cli
from dbamgr.errors import MigrationError
from dbamgr.server import LocalCluster
from dbamgr.target import Target
from dbamgr.verify import MigrationCheck, detect_drift, verify

BASE_UP = """\
CREATE TABLE users (
    id bigint PRIMARY KEY,
    email text NOT NULL CONSTRAINT users_email_check CHECK (email LIKE '%@%'),
    status text NOT NULL DEFAULT 'active',
    age integer
);
CREATE INDEX users_email ON users (email);
"""


@pytest.fixture
def project(project_files: ProjectFactory, pg_cluster: LocalCluster) -> ProjectFactory:
    """A project whose scratch databases go to the session's cluster."""
    project_files.write_config(f'[server]\ndata_dir = "{pg_cluster.directory}"\n')
    project_files.add("1", "users", BASE_UP, "DROP TABLE users;")
    return project_files


def check_of(project: ProjectFactory, version: int) -> MigrationCheck:
    report = verify(project.project)
    return next(m for m in report.migrations if m.version == version)


def described(check: MigrationCheck) -> list[str]:
    return [change.describe() for change in check.down_diff]


def test_a_correct_down_passes(project: ProjectFactory) -> None:
    project.add(
        "2",
        "nick",
        "ALTER TABLE users ADD COLUMN nick text;\n"
        "CREATE INDEX users_nick ON users (nick);",
        "DROP INDEX users_nick;\nALTER TABLE users DROP COLUMN nick;",
    )
    report = verify(project.project)
    assert report.ok
    assert [m.status for m in report.migrations] == ["passed", "passed"]
    check = report.migrations[1]
    assert check.up is not None and check.down is not None
    assert check.reup_seconds is not None


def test_missing_index_is_caught(project: ProjectFactory) -> None:
    project.add(
        "2",
        "nick",
        "DROP INDEX users_email;\nALTER TABLE users ADD COLUMN nick text;",
        "ALTER TABLE users DROP COLUMN nick;",
    )
    check = check_of(project, 2)
    assert check.status == "failed"
    assert described(check) == [
        "- table public.users: index users_email (removed): "
        "CREATE INDEX users_email ON public.users USING btree (email)"
    ]


def test_wrong_default_is_caught(project: ProjectFactory) -> None:
    project.add(
        "2",
        "default",
        "ALTER TABLE users ALTER COLUMN status SET DEFAULT 'new';",
        "ALTER TABLE users ALTER COLUMN status SET DEFAULT 'old';",
    )
    check = check_of(project, 2)
    assert described(check) == [
        "~ table public.users: column status: default: 'active'::text → 'old'::text"
    ]


def test_dropped_constraint_is_caught(project: ProjectFactory) -> None:
    project.add(
        "2",
        "relax",
        "ALTER TABLE users DROP CONSTRAINT users_email_check;",
        "COMMENT ON TABLE users IS NULL;",
    )
    check = check_of(project, 2)
    assert described(check) == [
        "- table public.users: constraint users_email_check (removed): "
        "CHECK (email ~~ '%@%'::text)"
    ]


def test_changed_column_type_is_caught(project: ProjectFactory) -> None:
    project.add(
        "2",
        "age",
        "ALTER TABLE users ALTER COLUMN age TYPE bigint;",
        "ALTER TABLE users ALTER COLUMN age TYPE numeric;",
    )
    check = check_of(project, 2)
    assert described(check) == [
        "~ table public.users: column age: type: integer → numeric"
    ]


def test_leftover_function_is_caught(project: ProjectFactory) -> None:
    project.add(
        "2",
        "helper",
        "CREATE FUNCTION user_count() RETURNS bigint LANGUAGE sql "
        "RETURN (SELECT count(*) FROM users);\nCREATE TABLE audit (id int);",
        "DROP TABLE audit;",
    )
    check = check_of(project, 2)
    assert described(check) == [
        "+ function public.user_count() (added): returns bigint, language sql, volatile"
    ]


def test_a_down_that_loses_rows_is_caught(project: ProjectFactory) -> None:
    project.seed(
        "users.sql",
        "INSERT INTO users (id, email) VALUES (1, 'a@x'), (2, 'b@x'), (3, 'c@x');",
    )
    project.add(
        "2",
        "nick",
        "ALTER TABLE users ADD COLUMN nick text;",
        "DELETE FROM users WHERE id > 1;\nALTER TABLE users DROP COLUMN nick;",
    )
    report = verify(project.project)
    assert report.seeds_loaded == ["users.sql"]
    check = report.migrations[1]
    assert check.status == "failed"
    assert check.data_problems == ["table public.users had 3 row(s), now 1"]
    assert not check.down_diff


def test_changed_row_content_is_caught_and_declared_loss_is_allowed(
    project: ProjectFactory,
) -> None:
    project.seed("users.sql", "INSERT INTO users (id, email) VALUES (1, 'a@x');")
    project.add(
        "2",
        "lower",
        "UPDATE users SET email = upper(email);",
        "UPDATE users SET email = email || '!';",
    )
    check = check_of(project, 2)
    assert check.data_problems == [
        "table public.users kept 1 row(s) but their content changed"
    ]
    project.add(
        "3",
        "purge",
        "-- dbamgr:data-loss the test accounts go\nALTER TABLE users ADD COLUMN x int;",
        "DELETE FROM users;\nALTER TABLE users DROP COLUMN x;",
    )
    (project.migrations / "2_lower" / "down.sql").write_text(
        "UPDATE users SET email = lower(email);"
    )
    report = verify(project.project)
    purge = report.migrations[2]
    assert purge.status == "passed"
    assert any("declares data loss" in note for note in purge.notes)


def lock_of(check: MigrationCheck, direction: str, table: str) -> tuple[str, bool]:
    phase = check.up if direction == "up" else check.down
    assert phase is not None
    lock = next(lock for lock in phase.locks if lock.relation == table)
    return lock.mode, lock.rewritten


def test_lock_trace_reports_locks_and_rewrites(project: ProjectFactory) -> None:
    project.seed(
        "users.sql",
        "INSERT INTO users (id, email) SELECT g, g || '@x' "
        "FROM generate_series(1, 2000) g;",
    )
    project.add(
        "2",
        "volatile_default",
        "ALTER TABLE users ADD COLUMN token double precision DEFAULT random();",
        "ALTER TABLE users DROP COLUMN token;",
    )
    project.add(
        "3",
        "bigint",
        "ALTER TABLE users ALTER COLUMN age TYPE bigint;",
        "ALTER TABLE users ALTER COLUMN age TYPE integer;",
    )
    project.add(
        "4",
        "index",
        "CREATE INDEX users_status ON users (status);",
        "DROP INDEX users_status;",
    )
    project.add(
        "5",
        "concurrent_index",
        "-- dbamgr:no-transaction\nCREATE INDEX CONCURRENTLY users_age ON users (age);",
        "-- dbamgr:no-transaction\nDROP INDEX CONCURRENTLY users_age;",
    )
    report = verify(project.project)
    assert report.ok, [m.failures for m in report.failed]
    checks = {m.version: m for m in report.migrations}
    assert lock_of(checks[2], "up", "public.users") == ("AccessExclusiveLock", True)
    assert lock_of(checks[3], "up", "public.users") == ("AccessExclusiveLock", True)
    assert lock_of(checks[4], "up", "public.users") == ("ShareLock", False)
    concurrent = checks[5].up
    assert concurrent is not None
    assert not any(lock.blocks_writes for lock in concurrent.locks)
    assert all(trace.sampled for trace in concurrent.statements)


def test_access_exclusive_held_during_later_statements_is_flagged(
    project: ProjectFactory,
) -> None:
    project.add(
        "2",
        "two_steps",
        "ALTER TABLE users ADD COLUMN a int;\nSELECT pg_sleep(0.05);\n"
        "UPDATE users SET a = 1;",
        "ALTER TABLE users DROP COLUMN a;",
    )
    check = check_of(project, 2)
    assert check.up is not None
    lock = next(lock for lock in check.up.locks if lock.relation == "public.users")
    assert lock.held_while == [2, 3]
    assert lock.held_seconds >= 0.05


def test_irreversible_migration_is_applied_but_not_counted_as_verified(
    project: ProjectFactory,
) -> None:
    project.add(
        "2",
        "drop_age",
        "-- dbamgr:irreversible age data goes\nALTER TABLE users DROP COLUMN age;",
        None,
    )
    project.add("3", "after", "CREATE TABLE t (id int);", "DROP TABLE t;")
    report = verify(project.project)
    assert [m.status for m in report.migrations] == ["passed", "irreversible", "passed"]
    assert report.ok


def test_verify_from_a_version_checks_only_the_later_ones(
    project: ProjectFactory,
) -> None:
    project.add("2", "a", "CREATE TABLE a (id int);", "DROP TABLE a;")
    project.add("3", "b", "CREATE TABLE b (id int);", "DROP TABLE b;")
    report = verify(project.project, from_version="3")
    assert report.applied_first == 2
    assert [m.version for m in report.migrations] == [3]


def test_failing_up_stops_verify_with_the_error(project: ProjectFactory) -> None:
    project.add("2", "bad", "ALTER TABLE users ADD COLUMN x nosuchtype;", "SELECT 1;")
    project.add("3", "later", "CREATE TABLE t (id int);", "DROP TABLE t;")
    project.add("4", "last", "CREATE TABLE u (id int);", "DROP TABLE u;")
    report = verify(project.project)
    assert [m.status for m in report.migrations] == ["passed", "failed"]
    assert "nosuchtype" in report.migrations[1].failures[0]
    assert report.not_verified == ["3_later", "4_last"]
    assert not report.ok


def test_an_up_that_builds_another_schema_the_second_time_is_caught(
    project: ProjectFactory,
) -> None:
    # the up makes its index only when the table has rows, and the down (which
    # declares the data loss) deletes them: the second up builds no index
    project.seed("users.sql", "INSERT INTO users (id, email) VALUES (1, 'a@x');")
    project.add(
        "2",
        "conditional",
        "DO $$ BEGIN\n"
        "    IF EXISTS (SELECT FROM users) THEN\n"
        "        CREATE INDEX users_age ON users (age);\n"
        "    END IF;\n"
        "END $$;",
        "-- dbamgr:data-loss the test empties the table\n"
        "DROP INDEX IF EXISTS users_age;\nDELETE FROM users;",
    )
    check = check_of(project, 2)
    assert check.status == "failed"
    assert check.down_diff == []
    assert check.failures == [
        "the up run again gives another schema: 1 difference(s) from the first up"
    ]
    assert [change.describe() for change in check.reup_diff] == [
        "- table public.users: index users_age (removed): "
        "CREATE INDEX users_age ON public.users USING btree (age)"
    ]


def test_verify_on_a_server_as_a_user_with_createdb_only(
    project: ProjectFactory, pg_cluster: LocalCluster
) -> None:
    # no superuser, no event triggers: verify finds changes by scanning
    role = "dbamgr_verify_creator"
    with pg_cluster.connect() as conn:
        conn.execute(f"DROP ROLE IF EXISTS {role}")
        conn.execute(f"CREATE ROLE {role} LOGIN CREATEDB")
    try:
        project.add(
            "2",
            "column",
            "ALTER TABLE users ADD COLUMN nickname text;",
            "ALTER TABLE users DROP COLUMN nickname;",
        )
        project.add(
            "3", "leftover", "CREATE INDEX users_age ON users (age);", "SELECT 1;"
        )
        url = pg_cluster.url().replace(
            "postgresql://postgres@", f"postgresql://{role}@"
        )
        report = verify(project.project, server_url=url)
    finally:
        with pg_cluster.connect() as conn:
            conn.execute(f"DROP ROLE IF EXISTS {role}")
    assert report.changes_found_by == "scanned"
    assert report.server == url
    assert [m.status for m in report.migrations] == ["passed", "passed", "failed"]
    assert any("users_age" in line for line in described(report.migrations[2]))
    assert report.snapshot_reads["scanned"] > 0


def test_each_result_is_handed_over_as_soon_as_it_is_known(
    project: ProjectFactory,
) -> None:
    project.add("2", "a", "CREATE TABLE a (id int);", "DROP TABLE a;")
    seen: list[tuple[str, int]] = []
    report = verify(
        project.project,
        on_check=lambda check: seen.append((check.ident, len(seen))),
    )
    assert seen == [("1_users", 0), ("2_a", 1)]
    assert [m.ident for m in report.migrations] == ["1_users", "2_a"]


def test_verify_on_a_server_where_the_role_may_not_create_databases_is_a_usage_error(
    project: ProjectFactory, pg_cluster: LocalCluster
) -> None:
    role = "dbamgr_verify_no_createdb"
    with pg_cluster.connect() as conn:
        conn.execute(f"DROP ROLE IF EXISTS {role}")
        conn.execute(f"CREATE ROLE {role} LOGIN")
    try:
        url = pg_cluster.url().replace(
            "postgresql://postgres@", f"postgresql://{role}@"
        )
        result = CliRunner().invoke(
            cli, ["-C", str(project.root), "verify", "--server", url]
        )
    finally:
        with pg_cluster.connect() as conn:
            conn.execute(f"DROP ROLE IF EXISTS {role}")
    assert result.exit_code == 2, result.output
    assert "give the role CREATEDB" in result.output


def test_a_failing_statement_is_located_while_traced(project: ProjectFactory) -> None:
    # the lock query travels with each statement: the error must still point
    # at the migration's own line and column
    project.add(
        "2",
        "bad_second",
        "ALTER TABLE users ADD COLUMN a int;\n"
        "ALTER TABLE users ADD COLUMN b nosuchtype;\n",
        "ALTER TABLE users DROP COLUMN a;",
    )
    report = verify(project.project)
    failure = report.migrations[1].failures[0]
    assert ":2:" in failure and "nosuchtype" in failure, failure


def test_an_unterminated_statement_is_located_as_up_locates_it(
    project: ProjectFactory, target: Target
) -> None:
    project.add(
        "2",
        "unterminated",
        "CREATE INDEX users_age\n    ON users (age;\n",
        "DROP INDEX users_age;",
    )
    with pytest.raises(MigrationError) as error:
        migrations.up(project.project, target)
    assert (error.value.context["line"], error.value.context["column"]) == (2, 18)
    report = verify(project.project)
    failure = report.migrations[1].failures[0]
    assert "up.sql:2:18" in failure, failure


def test_a_statement_ending_in_a_comment_is_traced(project: ProjectFactory) -> None:
    project.add(
        "2",
        "comment",
        "ALTER TABLE users ADD COLUMN a int -- a note, without a semicolon",
        "ALTER TABLE users DROP COLUMN a -- the same",
    )
    check = check_of(project, 2)
    assert check.status == "passed", check.failures
    assert check.up is not None
    assert [trace.index for trace in check.up.statements] == [1]
    assert lock_of(check, "up", "public.users")[0] == "AccessExclusiveLock"


def test_verify_cli_exits_1_with_the_diff(project: ProjectFactory) -> None:
    project.add(
        "2",
        "default",
        "ALTER TABLE users ALTER COLUMN status SET DEFAULT 'new';",
        "ALTER TABLE users ALTER COLUMN status SET DEFAULT 'old';",
    )
    runner = CliRunner()
    result = runner.invoke(cli, ["-C", str(project.root), "verify"])
    assert result.exit_code == 1
    assert "column status: default: 'active'::text → 'old'::text" in result.output
    as_json = runner.invoke(cli, ["-C", str(project.root), "verify", "--json"])
    payload = json.loads(as_json.stdout)
    assert payload["migrations"][1]["status"] == "failed"
    assert payload["migrations"][1]["down_diff"][0]["attribute"] == "default"


def test_verify_cli_names_what_it_left_unverified_and_unloaded(
    project: ProjectFactory,
) -> None:
    project.seed("typo.sql", "INSERT INTO userz VALUES (1);")
    project.add("2", "bad", "ALTER TABLE users ADD COLUMN x nosuchtype;", "SELECT 1;")
    project.add("3", "later", "CREATE TABLE t (id int);", "DROP TABLE t;")
    result = CliRunner().invoke(cli, ["-C", str(project.root), "verify"])
    assert result.exit_code == 1
    assert (
        "1 later migration(s) not verified (verify stops at a failed up or down): "
        "3_later" in result.output
    )
    shutil.rmtree(project.migrations / "2_bad")
    result = CliRunner().invoke(cli, ["-C", str(project.root), "verify"])
    assert result.exit_code == 1
    assert "seed file typo.sql was never loaded: no table userz exists" in result.output


def test_drift_finds_hand_made_changes(project: ProjectFactory, target: Target) -> None:
    project.add("2", "orders", "CREATE TABLE orders (id int);", "DROP TABLE orders;")
    migrations.up(project.project, target)
    clean = detect_drift(project.project, target)
    assert not clean.drifted and clean.replayed == 2

    with psycopg.connect(target.url, autocommit=True) as conn:
        conn.execute("CREATE INDEX by_hand ON users (status)")
        conn.execute("ALTER TABLE users ALTER COLUMN age TYPE bigint")
    report = detect_drift(project.project, target)
    assert sorted(c.describe() for c in report.changes) == [
        "+ table public.users: index by_hand (added): "
        "CREATE INDEX by_hand ON public.users USING btree (status)",
        "~ table public.users: column age: type: integer → bigint",
    ]
    result = CliRunner().invoke(
        cli, ["-C", str(project.root), "drift"], env={"DATABASE_URL": target.url}
    )
    assert result.exit_code == 1
    assert "by_hand" in result.output


def test_drift_replays_under_the_target_database_settings(
    project_files: ProjectFactory, pg_cluster: LocalCluster
) -> None:
    # the migrations name their tables unqualified: on the target they land in
    # the schema its search_path puts first, and so they must in the replay
    project_files.write_config(f'[server]\ndata_dir = "{pg_cluster.directory}"\n')
    project_files.add("1", "app", "CREATE SCHEMA app;", "DROP SCHEMA app;")
    project_files.add(
        "2",
        "tables",
        "CREATE TABLE customers (id int PRIMARY KEY);\n"
        "CREATE TABLE orders (customer int REFERENCES customers);",
        "DROP TABLE orders;\nDROP TABLE customers;",
    )
    url = pg_cluster.create_database("verify_drift_settings")
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "ALTER DATABASE verify_drift_settings SET search_path = app, public"
            )
        target = Target("test", url)
        migrations.up(project_files.project, target)
        with psycopg.connect(url, autocommit=True) as conn:
            assert conn.execute("SELECT 'customers'::regclass::text").fetchone() == (
                "customers",
            )
            conn.execute("CREATE INDEX by_hand ON orders (customer)")
        report = detect_drift(project_files.project, target)
    finally:
        pg_cluster.drop_database("verify_drift_settings")
    assert report.warnings == []
    assert [change.describe() for change in report.changes] == [
        "+ table app.orders: index by_hand (added): "
        "CREATE INDEX by_hand ON app.orders USING btree (customer)"
    ]


def test_migrations_that_create_roles_are_verified_on_a_cluster_of_their_own(
    project: ProjectFactory, pg_cluster: LocalCluster
) -> None:
    # roles belong to the whole cluster: made on the project's server, they
    # would outlive the scratch database and collide with the next run
    role = "dbamgr_verify_made_role"
    project.add(
        "2",
        "role",
        f"CREATE ROLE {role};\nGRANT SELECT ON users TO {role};",
        f"REVOKE SELECT ON users FROM {role};\nDROP ROLE {role};",
    )
    project.add(
        "3",
        "keep_role",
        f"CREATE ROLE {role}_kept;",
        f"DROP ROLE {role}_kept;",
    )
    for _ in range(2):
        report = verify(project.project)
        assert report.ok, [m.failures for m in report.failed]
    with pg_cluster.connect() as conn:
        left = conn.execute(
            "SELECT rolname FROM pg_roles WHERE rolname LIKE %s", [f"{role}%"]
        ).fetchall()
    assert left == []


def test_schema_diff_between_migrations_and_a_database(
    project: ProjectFactory, target: Target
) -> None:
    project.add("2", "orders", "CREATE TABLE orders (id int);", "DROP TABLE orders;")
    migrations.up(project.project, target, to="1")
    runner = CliRunner()
    args = ["-C", str(project.root), "schema", "diff", target.url, "migrations@2"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 1
    assert "+ table public.orders (added): (id integer)\n" in result.output
    as_json = runner.invoke(cli, [*args, "--json"])
    (added,) = json.loads(as_json.stdout)["changes"]
    assert added["before"] is None
    assert added["after"]["columns"]["id"]["type"] == "integer"
    same = runner.invoke(
        cli, ["-C", str(project.root), "schema", "diff", target.url, "migrations@1"]
    )
    assert same.exit_code == 0, same.output
    dumped = runner.invoke(
        cli,
        ["-C", str(project.root), "schema", "dump", "--json"],
        env={"DATABASE_URL": target.url},
    )
    snapshot_file = project.root / "snap.json"
    snapshot_file.write_text(dumped.stdout)
    from_file = runner.invoke(
        cli,
        ["-C", str(project.root), "schema", "diff", str(snapshot_file), "migrations@1"],
    )
    assert from_file.exit_code == 0, from_file.output
    empty = runner.invoke(
        cli, ["-C", str(project.root), "schema", "diff", "migrations@0", "migrations@1"]
    )
    assert empty.exit_code == 1, empty.output
    assert "+ table public.users (added)" in empty.output


def test_a_migration_without_a_down_fails_verify(project: ProjectFactory) -> None:
    project.add("2", "no_down", "CREATE TABLE t (id int);", "-- nothing yet\n")
    report = verify(project.project)
    check = report.migrations[1]
    assert check.status == "failed"
    assert "no down" in check.failures[0]
    assert not report.ok


# the durations in verify's output: "up 4 ms · down", "line 1 3 ms:", "in 1.20 s:"
_TIMES = re.compile(r"\b\d+(\.\d+)? m?s(?=:| ·|$)", re.M)


def verify_output(project: ProjectFactory, *args: str) -> tuple[int, str]:
    runner = CliRunner(env={"COLUMNS": None})
    result = runner.invoke(cli, ["-C", str(project.root), "verify", *args])
    return result.exit_code, _TIMES.sub("T", result.output)


def test_verify_summary_says_what_was_checked_applied_and_loaded(
    project: ProjectFactory,
) -> None:
    project.seed(
        "01_users.sql", "INSERT INTO users VALUES (1, 'a@example.com', 'active', 30);"
    )
    project.add(
        "2",
        "audit",
        "-- dbamgr:irreversible keeps what it logs\nCREATE TABLE audit (id int);",
        None,
    )
    project.add(
        "3",
        "nick",
        "ALTER TABLE users ADD COLUMN nick text;",
        "ALTER TABLE users DROP COLUMN nick;",
    )
    code, output = verify_output(project, "--from", "2")
    assert code == 0, output
    assert output.splitlines()[-3:] == [
        "2 migration(s) checked in T: 1 verified, 1 irreversible (only the up ran)",
        "1 earlier migration(s) applied first, without checks",
        "seed data loaded: 01_users.sql",
    ]


def test_a_failed_up_continues_indented_under_its_heading(
    project: ProjectFactory,
) -> None:
    project.add(
        "2", "bad", "ALTER TABLE users ADD COLUMN a int;\nSELEC 1;", "SELECT 1;"
    )
    code, output = verify_output(project)
    assert code == 1
    lines = output.splitlines()
    head = next(i for i, line in enumerate(lines) if "    up failed: " in line)
    assert lines[head].startswith('    up failed: migration "2_bad" failed (up)')
    assert lines[head + 1].startswith("      ERROR 42601: syntax error")
    assert "      statement: SELEC 1" in lines[head + 2 :]


def test_locks_shows_each_run_under_its_own_header(project: ProjectFactory) -> None:
    project.add(
        "2",
        "two",
        "CREATE FUNCTION two() RETURNS int LANGUAGE sql RETURN 2;",
        "DROP FUNCTION two();",
    )
    code, output = verify_output(project, "--locks")
    assert code == 0, output
    after = output.split("✓ 2_two")[1].splitlines()
    assert after[1:5] == [
        "    up:",
        "      #1 line 1 T: no lock on existing relations",
        "    down:",
        "      #1 line 1 T: no lock on existing relations",
    ]


def test_locks_outside_a_transaction_are_said_to_be_sampled(
    project: ProjectFactory,
) -> None:
    project.add(
        "2",
        "two",
        "-- dbamgr:no-transaction\n"
        "CREATE FUNCTION two() RETURNS int LANGUAGE sql RETURN 2;",
        "-- dbamgr:no-transaction\nDROP FUNCTION two();",
    )
    code, output = verify_output(project, "--locks")
    assert code == 0, output
    after = output.split("✓ 2_two")[1].splitlines()
    assert after[1:3] == [
        "    up (outside a transaction):",
        "      #1 line 2 T: no lock seen (sampled every 2 ms)",
    ]
