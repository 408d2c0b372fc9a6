"""Lint and plan against a live database: sizes, types, versions, the CLI."""

from __future__ import annotations

import json

import psycopg
import pytest
from click.testing import CliRunner
from tests.conftest import ProjectFactory

from dbamgr import migrations
from dbamgr.cli import cli
from dbamgr.lint import lint_project, plan_changes, render_markdown
from dbamgr.target import Target

SETUP = """
CREATE TABLE full_table (id bigint PRIMARY KEY, v varchar(10), payload text);
INSERT INTO full_table SELECT g, 'v', repeat('x', 200) FROM generate_series(1, 20000) g;
CREATE TABLE empty_table (id bigint PRIMARY KEY, v varchar(10));
ANALYZE;
"""


@pytest.fixture
def live(project_files: ProjectFactory, db_url: str) -> ProjectFactory:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(SETUP)
    project_files.write_config(
        f'[environments.live]\nurl = "{db_url}"\n\n'
        '[lint]\nwarn_after = "1ms"\nerror_after = "20ms"\n'
    )
    return project_files


def _severity(report: object, rule: str, relation: str) -> str:
    findings = getattr(report, "findings", [])
    return next(
        f.severity.label for f in findings if f.rule == rule and f.relation == relation
    )


def test_live_sizes_decide_the_severity_of_a_rewrite(
    live: ProjectFactory, db_url: str
) -> None:
    live.add(
        "20260101000000",
        "rewrite",
        "ALTER TABLE full_table ADD COLUMN u uuid DEFAULT gen_random_uuid();\n"
        "ALTER TABLE empty_table ADD COLUMN u uuid DEFAULT gen_random_uuid();\n",
        "SELECT 1;\n",
    )
    static = lint_project(live.project)
    sized = lint_project(live.project, Target("live", db_url))
    rule = "add-column-volatile-default"
    assert _severity(static, rule, "full_table") == "warning"
    assert _severity(static, rule, "empty_table") == "warning"
    assert _severity(sized, rule, "full_table") == "error"
    assert _severity(sized, rule, "empty_table") == "note"
    full = next(f for f in sized.findings if f.relation == "full_table")
    assert full.table_rows == 20000
    assert full.estimate_seconds is not None and full.estimate_seconds > 0.02


def test_a_required_column_on_a_table_with_rows_is_an_error(
    live: ProjectFactory, db_url: str
) -> None:
    live.add(
        "20260101000000",
        "required",
        "ALTER TABLE full_table ADD COLUMN owner bigint NOT NULL;\n"
        "ALTER TABLE empty_table ADD COLUMN owner bigint NOT NULL;\n",
        "SELECT 1;\n",
    )
    sized = lint_project(live.project, Target("live", db_url))
    assert _severity(sized, "add-required-column", "full_table") == "error"
    assert _severity(sized, "add-required-column", "empty_table") == "note"


def test_live_column_types_make_type_changes_precise(
    live: ProjectFactory, db_url: str
) -> None:
    live.add(
        "20260101000000",
        "widen",
        "ALTER TABLE full_table ALTER COLUMN v TYPE varchar(50);\n",
        "SELECT 1;\n",
    )
    static = lint_project(live.project)
    sized = lint_project(live.project, Target("live", db_url))
    assert "change-column-type" in {f.rule for f in static.findings}
    assert "change-column-type" not in {f.rule for f in sized.findings}


def test_the_server_version_is_the_default(live: ProjectFactory, db_url: str) -> None:
    live.add("20260101000000", "noop", "SELECT 1;\n", "SELECT 1;\n")
    with psycopg.connect(db_url) as conn:
        major = conn.info.server_version // 10000
    assert lint_project(live.project, Target("live", db_url)).pg_version == major
    assert lint_project(live.project, pg_version=11).pg_version == 11


def test_plan_covers_pending_migrations_only(live: ProjectFactory, db_url: str) -> None:
    live.add(
        "20260101000000",
        "first",
        "CREATE TABLE extra (id bigint PRIMARY KEY);\n",
        "DROP TABLE extra;\n",
    )
    live.add(
        "20260102000000",
        "index",
        "CREATE INDEX full_table_v ON full_table (v);\n"
        "ALTER TABLE full_table ADD COLUMN flag boolean DEFAULT false;\n",
        "ALTER TABLE full_table DROP COLUMN flag;\nDROP INDEX full_table_v;\n",
    )
    target = Target("live", db_url)
    migrations.up(live.project, target, to="20260101000000")
    plan = plan_changes(live.project, target)
    assert [m.ident for m in plan.migrations] == ["20260102000000_index"]
    (planned,) = plan.migrations
    assert planned.verdict == "blocked"
    first = planned.statements[0]
    assert [(s.relation, s.lock, s.rows) for s in first.locks] == [
        ("full_table", "SHARE", 20000)
    ]
    assert [(w.relation, w.lock, w.from_line) for w in planned.windows] == [
        ("full_table", "SHARE", 1),
        ("full_table", "ACCESS EXCLUSIVE", 2),
    ]
    assert planned.rollback == [
        "ALTER TABLE full_table DROP COLUMN flag",
        "DROP INDEX full_table_v",
    ]
    text = render_markdown(plan)
    for heading in ("## Risk assessment", "## Affected tables", "## Downtime estimate"):
        assert heading in text
    assert "## Rollback procedure" in text and "DROP INDEX full_table_v;" in text
    assert "| `full_table` | 20,000 |" in text


def test_cli_lint_formats_and_exit_codes(live: ProjectFactory, db_url: str) -> None:
    live.add(
        "20260101000000",
        "index",
        "CREATE INDEX full_table_v ON full_table (v);\n",
        "DROP INDEX full_table_v;\n",
    )
    root = str(live.root)
    runner = CliRunner()
    failing = runner.invoke(cli, ["-C", root, "lint", "--format", "json"])
    assert failing.exit_code == 1
    data = json.loads(failing.output)
    assert {f["rule"] for f in data["findings"]} >= {"create-index-non-concurrently"}
    passing = runner.invoke(cli, ["-C", root, "lint", "--fail-on", "error"])
    assert passing.exit_code == 0, passing.output
    assert "CREATE INDEX CONCURRENTLY full_table_v" in passing.output
    sarif = runner.invoke(cli, ["-C", root, "lint", "--format", "sarif"])
    assert json.loads(sarif.output)["version"] == "2.1.0"
    github = runner.invoke(cli, ["-C", root, "lint", "--format", "github"])
    assert github.output.startswith("::")
    sized = runner.invoke(
        cli, ["-C", root, "lint", "--env", "live", "--format", "json"]
    )
    index = next(
        f
        for f in json.loads(sized.output)["findings"]
        if f["rule"] == "create-index-non-concurrently"
    )
    assert index["table_rows"] == 20000
    listing = runner.invoke(cli, ["lint", "--rules", "--json"])
    assert len(json.loads(listing.output)) >= 50


def test_cli_plan_markdown_and_json(live: ProjectFactory, db_url: str) -> None:
    live.add(
        "20260101000000",
        "drop",
        "ALTER TABLE full_table DROP COLUMN payload;\n",
        "ALTER TABLE full_table ADD COLUMN payload text;\n",
    )
    live.write_config(f'[environments.live]\nurl = "{db_url}"\nprotected = true\n')
    root = str(live.root)
    runner = CliRunner()
    markdown = runner.invoke(
        cli, ["-C", root, "plan", "--env", "live", "--format", "markdown"]
    )
    assert markdown.exit_code == 1  # unapproved data loss on a protected target
    assert "Data loss without approval in: `20260101000000_drop`" in markdown.output
    piped = runner.invoke(cli, ["-C", root, "plan", "--env", "live"])
    assert piped.output == markdown.output  # not a terminal: the text, unwrapped
    as_json = runner.invoke(cli, ["-C", root, "plan", "--env", "live", "--json"])
    data = json.loads(as_json.output)
    assert data["verdict"] == "blocked"
    assert data["migrations"][0]["data_loss"] is True
