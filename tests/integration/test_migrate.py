from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from tests.conftest import ProjectFactory, sleeping_session

from dbamgr import migrations
from dbamgr.errors import LockTimeout, MigrationError, UsageError
from dbamgr.migrations.runner import Event
from dbamgr.target import Target


def tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
    return {row[0] for row in rows}


def columns(url: str, table: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = %s ORDER BY ordinal_position",
            [table],
        ).fetchall()
    return [row[0] for row in rows]


def states(project: ProjectFactory, target: Target) -> dict[str, str]:
    report = migrations.status(project.project, target)
    return {m.ident: m.state for m in report.migrations}


@pytest.fixture
def users_project(project_files: ProjectFactory) -> ProjectFactory:
    project_files.add(
        "20260101000000",
        "create_users",
        "CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL);\n",
        "DROP TABLE users;\n",
    )
    project_files.add(
        "20260102000000",
        "add_name",
        "ALTER TABLE users ADD COLUMN name text;\n",
        "ALTER TABLE users DROP COLUMN name;\n",
    )
    project_files.add(
        "20260103000000",
        "create_orders",
        """\
        CREATE TABLE orders (
            id bigint PRIMARY KEY,
            user_id bigint NOT NULL REFERENCES users (id)
        );
        CREATE INDEX orders_user_id ON orders (user_id);
        """,
        "DROP TABLE orders;\n",
    )
    return project_files


def test_up_down_redo_round_trip(users_project: ProjectFactory, target: Target) -> None:
    project = users_project.project
    report = migrations.up(project, target)
    assert [run.version for run in report.runs] == [
        20260101000000,
        20260102000000,
        20260103000000,
    ]
    assert tables(target.url) == {"users", "orders"}
    assert set(states(users_project, target).values()) == {"applied"}

    again = migrations.up(project, target)
    assert again.runs == []

    migrations.down(project, target)
    assert tables(target.url) == {"users"}
    migrations.down(project, target, steps=1)
    assert columns(target.url, "users") == ["id", "email"]

    migrations.up(project, target)
    migrations.down(project, target, to="20260101000000")
    assert tables(target.url) == {"users"}
    assert states(users_project, target)["20260102000000_add_name"] == "pending"

    migrations.up(project, target)
    redone = migrations.redo(project, target)
    assert [(r.direction, r.version) for r in redone.runs] == [
        ("down", 20260103000000),
        ("up", 20260103000000),
    ]
    migrations.down(project, target, to="0")
    assert tables(target.url) == set()

    log = migrations.history(project, target)
    directions = [entry.direction for entry in log]
    assert directions.count("up") == 8
    assert directions.count("down") == 8


def test_up_stops_at_the_version_given(
    users_project: ProjectFactory, target: Target
) -> None:
    migrations.up(users_project.project, target, to="20260102000000")
    assert tables(target.url) == {"users"}
    assert columns(target.url, "users") == ["id", "email", "name"]


def test_failure_in_the_middle_leaves_no_trace(
    users_project: ProjectFactory, target: Target
) -> None:
    users_project.add(
        "20260104000000",
        "broken",
        """\
        CREATE TABLE audit (id bigint);
        ALTER TABLE users ADD COLUMN age int;
        INSERT INTO users (id, email) VALUES (1, NULL);
        """,
        "DROP TABLE audit;\nALTER TABLE users DROP COLUMN age;\n",
    )
    project = users_project.project
    with pytest.raises(MigrationError) as caught:
        migrations.up(project, target)
    assert caught.value.context["sqlstate"] == "23502"
    assert caught.value.context["line"] == 3
    assert tables(target.url) == {"users", "orders"}
    assert "age" not in columns(target.url, "users")
    assert states(users_project, target)["20260104000000_broken"] == "pending"
    log = migrations.history(project, target)
    assert all(entry.version != 20260104000000 for entry in log)


def test_error_position_points_at_the_offending_token(
    project_files: ProjectFactory, target: Target
) -> None:
    project_files.add(
        "1",
        "typo",
        "-- a comment\nCREATE TABLE t (id int);\nSELECT id, nmae\n  FROM t;\n",
        "DROP TABLE t;",
    )
    with pytest.raises(MigrationError) as caught:
        migrations.up(project_files.project, target)
    error = caught.value
    assert (error.context["line"], error.context["column"]) == (3, 12)
    assert error.context["file"].endswith("1_typo/up.sql")
    assert 'column "nmae" does not exist' in error.message
    assert "up.sql:3:12" in error.message
    assert error.hint is not None and "rolled back" in error.hint


def test_error_detail_and_hint_are_reported(
    project_files: ProjectFactory, target: Target
) -> None:
    project_files.add(
        "1",
        "dup",
        """\
        CREATE TABLE t (id int PRIMARY KEY);
        INSERT INTO t VALUES (1), (1);
        """,
        "DROP TABLE t;",
    )
    with pytest.raises(MigrationError) as caught:
        migrations.up(project_files.project, target)
    assert "DETAIL: Key (id)=(1) already exists." in caught.value.message
    assert caught.value.context["detail"] == "Key (id)=(1) already exists."


def test_no_transaction_failure_is_recorded_and_resolvable(
    project_files: ProjectFactory, target: Target
) -> None:
    project_files.add("1", "base", "CREATE TABLE t (id int, v int);", "DROP TABLE t;")
    project_files.add(
        "2",
        "indexes",
        """\
        -- dbamgr:no-transaction
        CREATE INDEX CONCURRENTLY t_id ON t (id);
        CREATE INDEX CONCURRENTLY t_v ON t (nope);
        CREATE INDEX CONCURRENTLY t_both ON t (id, v);
        """,
        "-- dbamgr:no-transaction\nDROP INDEX CONCURRENTLY t_id;\n",
    )
    project_files.add("3", "later", "CREATE TABLE u (id int);", "DROP TABLE u;")
    project = project_files.project
    with pytest.raises(MigrationError) as caught:
        migrations.up(project, target)
    assert "resolve 2" in (caught.value.hint or "")

    report = migrations.status(project, target)
    failed = next(m for m in report.migrations if m.version == 2)
    assert failed.state == "failed"
    assert (failed.statements_done, failed.statements_total) == (1, 3)
    assert failed.error is not None and "nope" in failed.error
    assert "u" not in tables(target.url)

    with pytest.raises(MigrationError, match="did not finish"):
        migrations.up(project, target)

    migrations.resolve(project, target, "2", "applied")
    migrations.up(project, target)
    assert states(project_files, target) == {
        "1_base": "applied",
        "2_indexes": "applied",
        "3_later": "applied",
    }
    notes = [e.note for e in migrations.history(project, target) if e.note]
    assert any("resolved by hand as applied" in note for note in notes)


def test_rolled_back_resolution_lets_the_migration_run_again(
    project_files: ProjectFactory, target: Target
) -> None:
    project_files.add("1", "base", "CREATE TABLE t (id int);", "DROP TABLE t;")
    up_sql = project_files.add(
        "2",
        "index",
        "-- dbamgr:no-transaction\nCREATE INDEX CONCURRENTLY t_id ON t (idd);\n",
        "-- dbamgr:no-transaction\nDROP INDEX CONCURRENTLY t_id;\n",
    )
    project = project_files.project
    with pytest.raises(MigrationError):
        migrations.up(project, target)
    (up_sql / "up.sql").write_text(
        "-- dbamgr:no-transaction\nCREATE INDEX CONCURRENTLY t_id ON t (id);\n"
    )
    migrations.resolve(project_files.project, target, "2", "rolled-back")
    migrations.up(project_files.project, target)
    assert states(project_files, target)["2_index"] == "applied"
    migrations.down(project_files.project, target)
    assert states(project_files, target)["2_index"] == "pending"


def test_resolve_refuses_a_migration_that_did_not_fail(
    users_project: ProjectFactory, target: Target
) -> None:
    migrations.up(users_project.project, target)
    with pytest.raises(UsageError, match="not failed"):
        migrations.resolve(users_project.project, target, "20260101000000", "applied")


def run_concurrently(count: int, func: Any) -> list[BaseException | None]:
    results: list[BaseException | None] = [None] * count
    barrier = threading.Barrier(count)

    def work(index: int) -> None:
        barrier.wait()
        try:
            func()
        except BaseException as exc:
            results[index] = exc

    threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_concurrent_runners_apply_each_migration_once(
    project_files: ProjectFactory, target: Target
) -> None:
    project_files.add(
        "1",
        "slow",
        "CREATE TABLE counter (n int);\nSELECT pg_sleep(0.5);\n",
        "DROP TABLE counter;",
    )
    project_files.add(
        "2", "count", "INSERT INTO counter VALUES (1);", "DELETE FROM counter;"
    )
    project = project_files.project
    errors = run_concurrently(3, lambda: migrations.up(project, target))
    assert errors == [None, None, None]
    with psycopg.connect(target.url) as conn:
        assert conn.execute("SELECT count(*) FROM counter").fetchone() == (1,)
    ups = [e for e in migrations.history(project, target) if e.direction == "up"]
    assert len(ups) == 2


def test_second_runner_gives_up_naming_the_holder(
    users_project: ProjectFactory, target: Target
) -> None:
    project = users_project.write_config(lock_wait="200ms")
    from dbamgr.migrations import lock

    key = lock.lock_key("dbamgr", "schema_migrations")
    with psycopg.connect(
        target.url, autocommit=True, application_name="deploy-bot"
    ) as holder:
        holder.execute("SELECT pg_advisory_lock(%s, %s)", list(key))
        pid = holder.info.backend_pid
        with pytest.raises(LockTimeout) as caught:
            migrations.up(project, target)
    assert caught.value.exit_code == 4
    assert f"pid {pid}" in caught.value.message
    assert "deploy-bot" in caught.value.message
    assert tables(target.url) == set()


@contextmanager
def holding_lock(url: str, table: str, seconds: float) -> Iterator[None]:
    """Hold ACCESS EXCLUSIVE on *table* in another session for *seconds*."""
    conn = psycopg.connect(url)
    conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
    timer = threading.Timer(seconds, conn.rollback)
    timer.start()
    try:
        yield
    finally:
        timer.join()
        conn.close()


def test_lock_timeout_is_retried_until_the_lock_is_free(
    users_project: ProjectFactory, target: Target
) -> None:
    project = users_project.write_config(lock_timeout="100ms", retry_delay="200ms")
    migrations.up(project, target, to="20260101000000")
    events: list[Event] = []
    with holding_lock(target.url, "users", 0.5):
        migrations.up(project, target, on_event=events.append)
    retries = [event for event in events if event.kind == "retry"]
    assert 1 <= len(retries) <= 3
    assert "lock timeout" in retries[0].message
    assert tables(target.url) == {"users", "orders"}


def test_lock_timeout_gives_up_after_three_retries(
    users_project: ProjectFactory, target: Target
) -> None:
    project = users_project.write_config(lock_timeout="50ms", retry_delay="20ms")
    migrations.up(project, target, to="20260101000000")
    events: list[Event] = []
    with (
        holding_lock(target.url, "users", 2.0),
        pytest.raises(MigrationError) as caught,
    ):
        migrations.up(project, target, on_event=events.append)
    assert [event.kind for event in events].count("retry") == 3
    assert caught.value.context["sqlstate"] == "55P03"
    assert "name" not in columns(target.url, "users")


def test_changed_checksum_stops_up_and_down_until_accepted(
    users_project: ProjectFactory, target: Target
) -> None:
    project = users_project.project
    migrations.up(project, target, to="20260102000000")
    up_file = users_project.migrations / "20260101000000_create_users" / "up.sql"
    up_file.write_text(up_file.read_text() + "-- reviewed\n")
    assert states(users_project, target)["20260101000000_create_users"] == (
        "checksum-changed"
    )
    with pytest.raises(MigrationError) as caught:
        migrations.up(project, target)
    assert "20260101000000_create_users" in caught.value.message
    assert "create_users" in caught.value.message
    assert "accept-checksum" in (caught.value.hint or "")
    with pytest.raises(MigrationError, match="changed since"):
        migrations.down(project, target, to="0")

    migrations.resolve(project, target, "20260101000000", "accept-checksum")
    migrations.up(project, target)
    assert set(states(users_project, target).values()) == {"applied"}


def test_out_of_order_migration_is_refused_then_allowed(
    users_project: ProjectFactory, target: Target
) -> None:
    project = users_project.project
    migrations.up(project, target)
    users_project.add(
        "20260101120000",
        "from_branch",
        "CREATE TABLE late (id int);",
        "DROP TABLE late;",
    )
    assert states(users_project, target)["20260101120000_from_branch"] == "out-of-order"
    with pytest.raises(MigrationError) as caught:
        migrations.up(project, target)
    assert "20260101120000_from_branch" in caught.value.message
    assert "--allow-out-of-order" in (caught.value.hint or "")
    assert "late" not in tables(target.url)

    report = migrations.up(project, target, allow_out_of_order=True)
    assert [run.version for run in report.runs] == [20260101120000]
    assert any("out of order" in warning for warning in report.warnings)


def test_missing_down_is_refused_before_anything_runs(
    project_files: ProjectFactory, target: Target
) -> None:
    project_files.add("1", "ok", "CREATE TABLE a (id int);", "DROP TABLE a;")
    project_files.add("2", "no_down", "CREATE TABLE b (id int);", None)
    with pytest.raises(MigrationError) as caught:
        migrations.up(project_files.project, target)
    assert 'migration "2_no_down" has no down' in caught.value.message
    assert "2_no_down/down.sql" in caught.value.message
    assert "dbamgr:irreversible" in caught.value.message
    assert tables(target.url) == set()


def test_irreversible_migration_applies_but_stops_down_with_its_reason(
    project_files: ProjectFactory, target: Target
) -> None:
    project_files.add("1", "a", "CREATE TABLE a (id int);", "DROP TABLE a;")
    project_files.add(
        "2",
        "drop_legacy",
        "-- dbamgr:irreversible the legacy table's data cannot come back\n"
        "CREATE TABLE b (id int);\n",
        None,
    )
    project = project_files.project
    migrations.up(project, target)
    with pytest.raises(MigrationError) as caught:
        migrations.down(project, target, to="0")
    assert "the legacy table's data cannot come back" in caught.value.message
    assert tables(target.url) == {"a", "b"}


def test_dry_run_prints_exactly_what_runs_and_changes_nothing(
    users_project: ProjectFactory, target: Target
) -> None:
    report = migrations.up(users_project.project, target, dry_run=True)
    assert tables(target.url) == set()
    assert report.sql is not None
    text = report.sql
    assert text.index("pg_advisory_lock") < text.index("CREATE TABLE users")
    assert "SET LOCAL lock_timeout = '2000ms';" in text
    assert text.index("CREATE TABLE users") < text.index("ALTER TABLE users ADD")
    assert text.count("BEGIN;") == 3 and text.count("COMMIT;") == 3
    assert 'INSERT INTO "dbamgr"."schema_migrations"' in text

    # the printed script, run by psql-like hands, does the same as `up`
    with psycopg.connect(target.url, autocommit=True) as conn:
        conn.execute(text)
    assert tables(target.url) == {"users", "orders"}
    assert set(states(users_project, target).values()) == {"applied"}


def test_other_layouts_apply_as_they_are(
    project_files: ProjectFactory, target: Target
) -> None:
    folder = project_files.migrations
    (folder / "000001_create_a.up.sql").write_text("CREATE TABLE a (id int);")
    (folder / "000001_create_a.down.sql").write_text("DROP TABLE a;")
    (folder / "20200101000000_create_b.sql").write_text(
        "-- migrate:up\nCREATE TABLE b (id int);\n-- migrate:down\nDROP TABLE b;\n"
    )
    (folder / "2020-02-01-000000_create_c").mkdir()
    (folder / "2020-02-01-000000_create_c" / "up.sql").write_text(
        "CREATE TABLE c (id int);"
    )
    (folder / "2020-02-01-000000_create_c" / "down.sql").write_text("DROP TABLE c;")
    project = project_files.project
    migrations.up(project, target)
    assert tables(target.url) == {"a", "b", "c"}
    migrations.down(project, target, to="0")
    assert tables(target.url) == set()


def test_transaction_control_inside_a_migration_is_refused(
    project_files: ProjectFactory, target: Target
) -> None:
    project_files.add(
        "1", "a", "BEGIN;\nCREATE TABLE a (id int);\nCOMMIT;\n", "DROP TABLE a;"
    )
    with pytest.raises(MigrationError, match="BEGIN inside"):
        migrations.up(project_files.project, target)
    assert tables(target.url) == set()


def test_history_records_who_and_how(
    users_project: ProjectFactory, target: Target
) -> None:
    migrations.up(users_project.project, target)
    with psycopg.connect(target.url) as conn:
        row = conn.execute(
            "SELECT applied_by, in_transaction, status, duration IS NOT NULL, "
            "length(checksum) FROM dbamgr.schema_migrations ORDER BY version LIMIT 1"
        ).fetchone()
    assert row is not None
    assert "@" in row[0]
    assert row[1:] == (True, "applied", True, 64)


def test_session_settings_do_not_leak_between_migrations(
    project_files: ProjectFactory, target: Target
) -> None:
    project_files.add(
        "1",
        "a",
        "CREATE SCHEMA other;\nSET search_path = other;\nCREATE TABLE t (id int);\n",
        "DROP SCHEMA other CASCADE;",
    )
    project_files.add("2", "b", "CREATE TABLE t2 (id int);", "DROP TABLE t2;")
    migrations.up(project_files.project, target)
    assert tables(target.url) == {"t2"}


def test_lost_connection_is_retried_on_a_new_one(
    project_files: ProjectFactory, target: Target
) -> None:
    project_files.add(
        "1",
        "slow",
        "CREATE TABLE t (id int);\nSELECT pg_sleep(0.6);\n",
        "DROP TABLE t;",
    )
    project = project_files.project
    killed: list[int] = []

    def kill_runner_once() -> None:
        pid = sleeping_session(target.url, application="dbamgr up", tries=50)
        if pid is not None:
            with psycopg.connect(target.url, autocommit=True) as conn:
                conn.execute("SELECT pg_terminate_backend(%s)", [pid])
            killed.append(pid)

    killer = threading.Thread(target=kill_runner_once)
    killer.start()
    events: list[Event] = []
    migrations.up(project, target, on_event=events.append)
    killer.join()
    assert killed, "the runner's session was never seen"
    assert [e.kind for e in events].count("retry") == 1
    assert tables(target.url) == {"t"}
    assert states(project_files, target) == {"1_slow": "applied"}


def test_a_missing_column_without_a_server_position_is_located_by_name(
    project_files: ProjectFactory, target: Target
) -> None:
    project_files.add(
        "1",
        "index",
        "CREATE TABLE t (id int, tags text[]);\n"
        "CREATE INDEX t_tags ON t USING gin (tagz);\n",
        "DROP TABLE t;",
    )
    with pytest.raises(MigrationError) as caught:
        migrations.up(project_files.project, target)
    assert (caught.value.context["line"], caught.value.context["column"]) == (2, 37)


def test_history_shows_a_failed_no_transaction_run_with_its_error(
    project_files: ProjectFactory, target: Target
) -> None:
    project_files.add("1", "base", "CREATE TABLE t (id int, v int);", "DROP TABLE t;")
    project_files.add(
        "2",
        "indexes",
        """\
        -- dbamgr:no-transaction
        CREATE INDEX CONCURRENTLY t_id ON t (id);
        CREATE INDEX CONCURRENTLY t_v ON t (nope);
        """,
        "-- dbamgr:no-transaction\nDROP INDEX CONCURRENTLY t_id;\n",
    )
    project = project_files.project
    with pytest.raises(MigrationError):
        migrations.up(project, target)

    failed = migrations.history(project, target)[-1]
    assert (failed.label, failed.direction, failed.status) == ("2", "up", "failed")
    assert failed.error is not None and '"nope" does not exist' in failed.error
    assert failed.note == "stopped after 1 of 2 statement(s)"
    assert failed.duration is not None

    migrations.resolve(project, target, "2", "rolled-back")
    log = migrations.history(project, target)
    assert [(e.label, e.direction, e.status) for e in log] == [
        ("1", "up", "done"),
        ("2", "up", "failed"),
        ("2", "resolve", "done"),
    ]


def test_history_keeps_an_interrupted_run_once_it_is_resolved(
    project_files: ProjectFactory, target: Target
) -> None:
    project_files.add(
        "1",
        "slow",
        "-- dbamgr:no-transaction\nCREATE TABLE t (id int);\nSELECT pg_sleep(30);\n",
        "DROP TABLE t;",
    )
    runner = subprocess.Popen(
        [sys.executable, "-m", "dbamgr", "-C", str(project_files.root), "up"],
        env={**os.environ, "DATABASE_URL": target.url},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        pid = sleeping_session(target.url)
        assert pid is not None, "the runner never reached its second statement"
        with psycopg.connect(target.url, autocommit=True) as conn:
            runner.kill()
            runner.wait()
            # pg_terminate_backend waits for the session (and its lock) to end
            conn.execute("SELECT pg_terminate_backend(%s, 5000)", [pid])
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
    project = project_files.project
    assert states(project_files, target) == {"1_slow": "interrupted"}
    assert migrations.history(project, target) == []

    migrations.resolve(project, target, "1", "applied")
    interrupted, resolution = migrations.history(project, target)
    assert (interrupted.direction, interrupted.status) == ("up", "interrupted")
    assert interrupted.note == "stopped after 1 of 2 statement(s)"
    assert resolution.note is not None and "was running" in resolution.note


LAYOUT_1_LOG = """
CREATE TABLE dbamgr.schema_migrations_log (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    version numeric NOT NULL, label text NOT NULL, name text NOT NULL,
    direction text NOT NULL, checksum text NOT NULL,
    in_transaction boolean NOT NULL, started_at timestamptz NOT NULL,
    duration interval, applied_by text NOT NULL,
    db_role text NOT NULL DEFAULT current_user, note text)
"""


def test_a_history_log_of_layout_1_is_read_then_upgraded(
    project_files: ProjectFactory, target: Target
) -> None:
    project_files.add("1", "a", "CREATE TABLE a (id int);", "DROP TABLE a;")
    project_files.add("2", "b", "CREATE TABLE b (id int);", "DROP TABLE b;")
    project = project_files.project
    migrations.up(project, target, to="1")
    with psycopg.connect(target.url, autocommit=True) as conn:
        conn.execute("DROP TABLE dbamgr.schema_migrations_log")
        conn.execute(LAYOUT_1_LOG)
        conn.execute(
            "INSERT INTO dbamgr.schema_migrations_log (version, label, name, "
            "direction, checksum, in_transaction, started_at, applied_by) "
            "VALUES (1, '1', 'a', 'up', 'x', true, now(), 'someone@host')"
        )
    (old,) = migrations.history(project, target)
    assert (old.applied_by, old.status, old.error) == ("someone@host", "done", None)

    migrations.up(project, target)
    assert columns(target.url, "schema_migrations_log")[-2:] == ["status", "error"]
    assert [(e.label, e.status) for e in migrations.history(project, target)] == [
        ("1", "done"),
        ("2", "done"),
    ]
