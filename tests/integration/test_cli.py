from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from click.testing import CliRunner
from tests.conftest import ProjectFactory, sleeping_session

from dbamgr import migrations
from dbamgr.cli import cli
from dbamgr.migrations import lock
from dbamgr.target import Target


def with_password(url: str, password: str) -> str:
    return url.replace("postgres@", f"postgres:{password}@", 1)


def invoke(project: ProjectFactory, url: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        cli, ["-C", str(project.root), *args], env={"DATABASE_URL": url}
    )
    return result.exit_code, result.output


def error_log(project: ProjectFactory) -> list[dict[str, object]]:
    path = project.root / ".dbamgr" / "logs" / "errors.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_up_and_status_as_json_with_the_password_masked(
    project_files: ProjectFactory, db_url: str
) -> None:
    project_files.add("1", "a", "CREATE TABLE a (id int);", "DROP TABLE a;")
    url = with_password(db_url, "hunter2")
    code, output = invoke(project_files, url, "up", "--json")
    assert code == 0, output
    report = json.loads(output)
    assert [run["ident"] for run in report["runs"]] == ["1_a"]
    assert "hunter2" not in output and ":****@" in report["target"]

    code, output = invoke(project_files, url, "status", "--json")
    assert code == 0
    status = json.loads(output)
    assert status["migrations"][0]["state"] == "applied"
    assert "hunter2" not in output

    code, output = invoke(project_files, url, "history", "--json")
    assert code == 0
    assert json.loads(output)[0]["direction"] == "up"


def test_unreachable_database_exits_3_without_the_password(
    project_files: ProjectFactory, tmp_path: Path
) -> None:
    url = "postgresql://app:hunter2@127.0.0.1:1/nowhere"
    code, output = invoke(project_files, url, "status")
    assert code == 3
    assert "hunter2" not in output
    assert "postgresql://app:****@127.0.0.1:1/nowhere" in output
    record = error_log(project_files)[-1]
    assert record["error_type"] == "DatabaseUnreachable"
    assert "hunter2" not in json.dumps(record)


def test_failed_migration_exits_1_and_is_logged(
    project_files: ProjectFactory, db_url: str
) -> None:
    project_files.add(
        "1", "bad", "CREATE TABLE a (id int);\nSELEC 1;\n", "DROP TABLE a;"
    )
    code, output = invoke(project_files, with_password(db_url, "pw-xyz"), "up")
    assert code == 1
    assert "1_bad/up.sql:2:1" in output
    assert "syntax error" in output
    record = error_log(project_files)[-1]
    assert record["migration"] == "1_bad"
    context = record["context"]
    assert isinstance(context, dict) and context["line"] == 2
    assert "rolled back" in str(record["hint"])
    assert "pw-xyz" not in json.dumps(record)


def test_failed_migration_as_json_carries_the_error(
    project_files: ProjectFactory, db_url: str
) -> None:
    project_files.add("1", "bad", "SELECT nope;", "SELECT 1;")
    result = CliRunner().invoke(
        cli,
        ["-C", str(project_files.root), "up", "--json"],
        env={"DATABASE_URL": db_url},
    )
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    assert payload["error"]["type"] == "MigrationError"
    assert payload["error"]["context"]["sqlstate"] == "42703"


def test_held_lock_exits_4(project_files: ProjectFactory, db_url: str) -> None:
    project_files.write_config(lock_wait="100ms")
    project_files.add("1", "a", "CREATE TABLE a (id int);", "DROP TABLE a;")
    key = lock.lock_key("dbamgr", "schema_migrations")
    with psycopg.connect(db_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s, %s)", list(key))
        code, output = invoke(project_files, db_url, "up")
    assert code == 4
    assert "holds the lock" in output
    assert "raise [migrations] lock_wait;" in output


def test_a_bracketed_statement_is_shown_as_written(
    project_files: ProjectFactory, db_url: str
) -> None:
    project_files.add("1", "bad", "SELECT a[i] FROM t;", "SELECT 1;")
    code, output = invoke(project_files, db_url, "up")
    assert code == 1
    assert "statement: SELECT a[i] FROM t\n" in output


def test_schema_dump_shows_a_bracketed_default_as_written(
    project_files: ProjectFactory, db_url: str
) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (a text DEFAULT '[bold]hi[/bold] [red]x')")
    code, output = invoke(project_files, db_url, "schema", "dump")
    assert code == 0, output
    assert "a text default '[bold]hi[/bold] [red]x'::text" in output


def test_schema_dump_names_each_part_in_the_singular(
    project_files: ProjectFactory, db_url: str
) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY, org_id int)")
        conn.execute("CREATE INDEX orders_org_id ON orders (org_id)")
        conn.execute("CREATE POLICY mine ON orders USING (org_id = 1)")
    code, output = invoke(project_files, db_url, "schema", "dump")
    assert code == 0, output
    assert "    index orders_org_id: CREATE INDEX orders_org_id ON" in output
    assert "    constraint orders_pkey: PRIMARY KEY (id)" in output
    assert "    policy mine: ALL" in output
    assert "indexe " not in output and "policie " not in output


OUTLINED = """
CREATE TYPE mood AS ENUM ('sad', 'it''s ok', 'happy');
CREATE TABLE events (id bigint, at date NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE events_2026 PARTITION OF events
    FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE docs (id int PRIMARY KEY, owner text, body text);
ALTER TABLE docs ENABLE ROW LEVEL SECURITY;
ALTER TABLE docs FORCE ROW LEVEL SECURITY;
CREATE POLICY own ON docs FOR UPDATE
    USING (owner = current_user) WITH CHECK (owner = current_user);
CREATE POLICY peek ON docs AS RESTRICTIVE FOR SELECT TO pg_monitor USING (true);
CREATE TABLE notes (id int);
CREATE POLICY idle ON notes USING (id > 0);
CREATE VIEW doc_owners AS
    SELECT owner, count(*) AS n, max(length(body)) AS longest, min(id) AS first_id
    FROM docs GROUP BY owner;
"""


def test_schema_dump_outlines_enums_partitions_views_and_row_security(
    project_files: ProjectFactory, db_url: str
) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(OUTLINED)
    code, output = invoke(project_files, db_url, "schema", "dump")
    assert code == 0, output
    lines = output.splitlines()
    for expected in (
        "  public.mood  enum ('sad', 'it''s ok', 'happy')",
        "    partition by RANGE (at)",
        "    partition of public.events FOR VALUES FROM ('2026-01-01') TO "
        "('2027-01-01')",
        "    row level security enabled, forced",
        "    policy own: UPDATE USING (owner = CURRENT_USER) "
        "WITH CHECK (owner = CURRENT_USER)",
        "    policy peek: SELECT restrictive TO pg_monitor USING (true)",
        "    row level security disabled: its policies are not applied",
        "    policy idle: ALL USING (id > 0)",
    ):
        assert expected in lines, (expected, output)
    # the view's query on one line, cut at 100 characters
    (query,) = [line for line in lines if line.startswith("    as ")]
    # before PostgreSQL 16 the view's columns print qualified
    assert query.replace("docs.", "").startswith(
        "    as SELECT owner, count(*) AS n, max(length(body))"
    )
    assert query.endswith("…") and len(query) <= len("    as ") + 100


def test_unknown_environment_exits_2(project_files: ProjectFactory) -> None:
    project_files.write_config(
        '[environments.prod]\nurl_env = "PROD_URL"\nprotected = true\n'
    )
    result = CliRunner().invoke(
        cli, ["-C", str(project_files.root), "--env", "staging", "status"], env={}
    )
    assert result.exit_code == 2
    assert 'no environment "staging"' in result.output
    assert "prod" in result.output


def test_environment_url_comes_from_its_variable(
    project_files: ProjectFactory, db_url: str
) -> None:
    project_files.write_config('[environments.prod]\nurl_env = "PROD_URL"\n')
    project_files.add("1", "a", "CREATE TABLE a (id int);", "DROP TABLE a;")
    runner = CliRunner()
    args = ["-C", str(project_files.root), "--env", "prod", "up"]
    missing = runner.invoke(cli, args, env={"DATABASE_URL": None, "PROD_URL": None})
    assert missing.exit_code == 2
    assert "PROD_URL" in missing.output
    ok = runner.invoke(cli, args, env={"DATABASE_URL": None, "PROD_URL": db_url})
    assert ok.exit_code == 0, ok.output


def test_dry_run_prints_sql_and_exits_0(
    project_files: ProjectFactory, db_url: str
) -> None:
    project_files.add("1", "a", "CREATE TABLE a (id int);", "DROP TABLE a;")
    code, output = invoke(project_files, db_url, "up", "--dry-run")
    assert code == 0
    assert "CREATE TABLE a (id int);" in output
    code, output = invoke(project_files, db_url, "status", "--json")
    assert json.loads(output)["migrations"][0]["state"] == "pending"


def test_status_exits_1_when_a_file_changed(
    project_files: ProjectFactory, db_url: str
) -> None:
    folder = project_files.add("1", "a", "CREATE TABLE a (id int);", "DROP TABLE a;")
    assert invoke(project_files, db_url, "up")[0] == 0
    (folder / "up.sql").write_text("CREATE TABLE a (id bigint);")
    code, output = invoke(project_files, db_url, "status")
    assert code == 1
    assert "checksum-changed" in output


def test_resolve_accept_checksum_says_what_it_did(
    project_files: ProjectFactory, db_url: str
) -> None:
    folder = project_files.add("1", "a", "CREATE TABLE a (id int);", "DROP TABLE a;")
    assert invoke(project_files, db_url, "up")[0] == 0
    (folder / "up.sql").write_text("CREATE TABLE a (id int); -- reviewed")
    code, output = invoke(project_files, db_url, "resolve", "1", "--accept-checksum")
    assert code == 0, output
    assert (
        output == "1_a: accepted the changed checksum of its file; it stays applied\n"
    )
    assert invoke(project_files, db_url, "status")[0] == 0


def test_piped_status_and_history_keep_each_row_on_one_line(
    project_files: ProjectFactory, db_url: str
) -> None:
    name = "add_a_long_descriptive_name_" + "x" * 80
    folder = project_files.add("20260101120000", name, "CREATE TABLE a (id int);")
    (folder / "down.sql").write_text("DROP TABLE a;")
    runner = CliRunner(env={"DATABASE_URL": db_url, "COLUMNS": None})
    args = ["-C", str(project_files.root)]
    assert runner.invoke(cli, [*args, "up"]).exit_code == 0
    (folder / "up.sql").write_text("CREATE TABLE a (id bigint);")

    status = runner.invoke(cli, [*args, "status"]).output
    row = next(line for line in status.splitlines() if "20260101120000" in line)
    assert name in row
    assert "checksum-changed" in row and "file changed since applied" in row

    history = runner.invoke(cli, [*args, "history"]).output
    row = next(line for line in history.splitlines() if "20260101120000" in line)
    assert name in row
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ", row)


def test_history_lists_a_failed_no_transaction_run_with_its_error(
    project_files: ProjectFactory, db_url: str
) -> None:
    project_files.add(
        "1",
        "index",
        "-- dbamgr:no-transaction\nCREATE TABLE t (id int);\n"
        "CREATE INDEX CONCURRENTLY t_x ON t (x);\n",
        "DROP TABLE t;",
    )
    code, _ = invoke(project_files, db_url, "up")
    assert code == 1

    code, output = invoke(project_files, db_url, "history")
    assert code == 0, output
    (line,) = [line for line in output.splitlines() if " 1 " in f" {line} "]
    assert "up failed" in line
    assert 'stopped after 1 of 2 statement(s); column "x" does not exist' in line

    code, output = invoke(project_files, db_url, "history", "--json")
    (entry,) = json.loads(output)
    assert (entry["status"], entry["error"]) == ("failed", 'column "x" does not exist')


@contextmanager
def runner_at_work(project: ProjectFactory, url: str) -> Iterator[int]:
    """Run `up` in a thread; yield the pid of its session once it is in its sleep."""
    thread = threading.Thread(
        target=migrations.up, args=(project.project, Target("test", url))
    )
    thread.start()
    try:
        pid = sleeping_session(url)
        assert pid is not None, "the runner never reached its sleep"
        yield pid
    finally:
        thread.join()


def test_status_says_who_holds_the_lock_while_a_runner_applies(
    project_files: ProjectFactory, db_url: str
) -> None:
    project_files.add(
        "1", "slow", "CREATE TABLE t (id int);\nSELECT pg_sleep(2);\n", "DROP TABLE t;"
    )
    with runner_at_work(project_files, db_url) as pid:
        code, output = invoke(project_files, db_url, "status")
        assert code == 0, output
        assert re.search(
            rf'locked: pid {pid} \("dbamgr up \(.*\)", user \w+[^)]*\) holds the '
            "migration lock",
            output,
        )
        assert re.search(r"^1\s+slow\s+pending", output, re.M)

        code, output = invoke(project_files, db_url, "status", "--json")
        holder = json.loads(output)["lock_holder"]
        assert holder["pid"] == pid
        assert holder["application_name"].startswith("dbamgr up (")

    code, output = invoke(project_files, db_url, "status", "--json")
    assert json.loads(output)["lock_holder"] is None


def test_status_shows_a_no_transaction_migration_at_work_as_running(
    project_files: ProjectFactory, db_url: str
) -> None:
    project_files.add(
        "1",
        "slow",
        "-- dbamgr:no-transaction\nCREATE TABLE t (id int);\nSELECT pg_sleep(2);\n",
        "DROP TABLE t;",
    )
    with runner_at_work(project_files, db_url):
        code, output = invoke(project_files, db_url, "status")
    assert code == 0, output
    assert re.search(r"^1\s+slow\s+running\s.*1/2 statements", output, re.M)
