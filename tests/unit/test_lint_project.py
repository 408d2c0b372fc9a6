"""Linting a project on disk: layouts, positions in files, file-wide approval."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner
from tests.conftest import ProjectFactory

from dbamgr.cli import cli
from dbamgr.lint import data_loss_findings, lint_project
from dbamgr.migrations import load_migrations

SINGLE = """\
-- migrate:up
CREATE TABLE items (id bigint PRIMARY KEY, name text);

-- dbamgr:ignore create-index-non-concurrently items is created just above
CREATE INDEX items_name ON items (name);
ALTER TABLE legacy DROP COLUMN note;

-- migrate:down
ALTER TABLE legacy ADD COLUMN note text;
DROP TABLE items;
"""


def test_single_file_migrations_report_lines_of_the_file(
    project_files: ProjectFactory,
) -> None:
    path = project_files.migrations / "20260101000000_items.sql"
    path.write_text(SINGLE)
    report = lint_project(project_files.project)
    drop = next(f for f in report.findings if f.rule == "drop-column")
    assert (Path(drop.file).name, drop.line, drop.direction) == (
        "20260101000000_items.sql",
        6,
        "up",
    )
    down_drop = next(f for f in report.findings if f.rule == "drop-table")
    assert (down_drop.line, down_drop.severity.label) == (10, "note")
    unused = next(f for f in report.findings if f.rule == "unused-ignore")
    assert unused.line == 4  # the index is on a table created just above


def test_a_file_wide_data_loss_directive_approves_every_statement(
    project_files: ProjectFactory,
) -> None:
    project_files.add(
        "20260101000000",
        "cleanup",
        "-- dbamgr:data-loss the legacy tables were archived to S3 on 2026-01-01\n"
        "DROP TABLE legacy_a;\nDROP TABLE legacy_b;\n",
        None,
    )
    (migration,) = load_migrations(project_files.migrations).migrations
    found = data_loss_findings(migration, "up")
    assert len(found) == 2
    assert all(f.approved and "archived" in f.approved for f in found)
    report = lint_project(project_files.project)
    assert not [f for f in report.findings if f.is_data_loss]
    assert len([f for f in report.suppressed if f.is_data_loss]) == 2


def test_no_transaction_migrations_accept_concurrently(
    project_files: ProjectFactory,
) -> None:
    project_files.add(
        "20260101000000",
        "index",
        "-- dbamgr:no-transaction\n"
        "DROP INDEX CONCURRENTLY IF EXISTS orders_status;\n"
        "CREATE INDEX CONCURRENTLY orders_status ON orders (status);\n",
        "-- dbamgr:no-transaction\nDROP INDEX CONCURRENTLY IF EXISTS orders_status;\n",
    )
    rules = {f.rule for f in lint_project(project_files.project).findings}
    assert "not-allowed-in-transaction" not in rules
    assert "create-index-non-concurrently" not in rules
    assert rules <= {"missing-lock-timeout"}


def _lint_output(project: ProjectFactory, fmt: str) -> str:
    result = CliRunner().invoke(
        cli, ["-C", str(project.root), "lint", "--format", fmt], env={}
    )
    assert result.exit_code == 1, result.output
    return result.output


def test_a_syntax_error_is_located_where_the_parser_stopped_in_every_format(
    project_files: ProjectFactory,
) -> None:
    project_files.add(
        "20260101000000", "index", "CREATE INDEX x\n    ON users (nick;\n", None
    )
    (project_files.migrations / "20260102000000_items.sql").write_text(
        "-- migrate:up\nSELECT 1;\nCREATE TABLE items (a int,, b int);\n"
    )
    # the parser stops at the end of the first statement, and at the second comma
    # of the other (line 3 of its file: the dbmate marker is line 1)
    expected = {("up.sql", 2, 19), ("20260102000000_items.sql", 3, 27)}

    human = _lint_output(project_files, "human")
    assert "20260101000000_index/up.sql:2:19  error  syntax-error" in human
    assert "20260102000000_items.sql:3:27  error  syntax-error" in human

    findings = json.loads(_lint_output(project_files, "json"))["findings"]
    assert {
        (Path(f["file"]).name, f["line"], f["column"])
        for f in findings
        if f["rule"] == "syntax-error"
    } == expected

    sarif = json.loads(_lint_output(project_files, "sarif"))
    places = {
        (
            Path(loc["physicalLocation"]["artifactLocation"]["uri"]).name,
            loc["physicalLocation"]["region"]["startLine"],
            loc["physicalLocation"]["region"]["startColumn"],
        )
        for result in sarif["runs"][0]["results"]
        if result["ruleId"] == "syntax-error"
        for loc in result["locations"]
    }
    assert places == expected

    github = _lint_output(project_files, "github")
    assert re.search(r"up\.sql,line=2,col=19,.*syntax error at end of input", github)
    assert re.search(r"items\.sql,line=3,col=27,.*syntax error at or near", github)
