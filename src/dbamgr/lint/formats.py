"""Machine-readable lint output: JSON, SARIF 2.1.0, GitHub workflow commands."""

from __future__ import annotations

import dataclasses
from enum import Enum
from pathlib import Path
from typing import Any

from dbamgr import __version__
from dbamgr.lint.model import Finding, LintReport, Rule, Severity
from dbamgr.lint.plan import ChangePlan
from dbamgr.lint.rules import RULES

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_SARIF_LEVEL = {
    Severity.NOTE: "note",
    Severity.WARNING: "warning",
    Severity.ERROR: "error",
}
_GITHUB_LEVEL = {
    Severity.NOTE: "notice",
    Severity.WARNING: "warning",
    Severity.ERROR: "error",
}


def finding_json(finding: Finding) -> dict[str, Any]:
    """One finding as plain values."""
    return {
        "rule": finding.rule,
        "severity": finding.severity.label,
        "hazard": finding.hazard,
        "file": finding.file,
        "line": finding.line,
        "column": finding.column,
        "migration": finding.migration,
        "direction": finding.direction,
        "relation": finding.relation,
        "message": finding.message,
        "why": finding.why,
        "alternative": finding.alternative,
        "statement": finding.statement,
        "estimate_seconds": finding.estimate_seconds,
        "table_bytes": finding.table_bytes,
        "table_rows": finding.table_rows,
        "suppressed": finding.suppressed,
    }


def report_json(report: LintReport) -> dict[str, Any]:
    """The report as ``--format json`` prints it."""
    return {
        "pg_version": report.pg_version,
        "target": report.target,
        "statements": report.statements,
        "counts": report.counts(),
        "fail_on": report.fail_on.label if report.fail_on else None,
        "failed": report.failed,
        "findings": [finding_json(f) for f in report.findings],
        "suppressed": [finding_json(f) for f in report.suppressed],
    }


def _plain(value: Any) -> Any:
    if isinstance(value, Finding):
        return finding_json(value)
    if isinstance(value, Enum):
        return getattr(value, "label", value.name)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)
        }
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def plan_json(plan: ChangePlan) -> dict[str, Any]:
    """The change plan as plain values (severities and locks as words)."""
    data: dict[str, Any] = _plain(plan)
    return data


def rule_json(rule: Rule) -> dict[str, Any]:
    """A rule's documentation as plain values."""
    return {
        "id": rule.id,
        "severity": rule.severity.label,
        "hazard": rule.hazard,
        "title": rule.title,
        "why": rule.why,
        "alternative": rule.alternative,
    }


def _uri(file: str) -> str:
    path = Path(file)
    return path.as_uri() if path.is_absolute() else path.as_posix()


def _sarif_result(finding: Finding, index: dict[str, int]) -> dict[str, Any]:
    text = finding.message
    if finding.alternative:
        text += f"\nSafer:\n{finding.alternative}"
    result: dict[str, Any] = {
        "ruleId": finding.rule,
        "ruleIndex": index[finding.rule],
        "level": _SARIF_LEVEL[finding.severity],
        "message": {"text": text},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": _uri(finding.file)},
                    "region": {
                        "startLine": finding.line,
                        "startColumn": finding.column,
                        "snippet": {"text": finding.statement},
                    },
                }
            }
        ],
        "properties": {
            "hazard": finding.hazard,
            "why": finding.why,
            "relation": finding.relation,
            "alternative": finding.alternative,
            "estimateSeconds": finding.estimate_seconds,
            "migration": finding.migration,
            "direction": finding.direction,
        },
    }
    if finding.suppressed is not None:
        result["suppressions"] = [
            {"kind": "inSource", "justification": finding.suppressed}
        ]
    return result


def report_sarif(report: LintReport) -> dict[str, Any]:
    """The report as a SARIF 2.1.0 log (suppressed findings carry suppressions)."""
    rules = sorted(RULES.values(), key=lambda r: r.id)
    index = {rule.id: position for position, rule in enumerate(rules)}
    descriptors = [
        {
            "id": rule.id,
            "name": "".join(part.title() for part in rule.id.split("-")),
            "shortDescription": {"text": rule.title},
            "fullDescription": {"text": rule.why},
            "help": {"text": rule.alternative or rule.why},
            "defaultConfiguration": {"level": _SARIF_LEVEL[rule.severity]},
            "properties": {"tags": [rule.hazard]},
        }
        for rule in rules
    ]
    results = [_sarif_result(f, index) for f in [*report.findings, *report.suppressed]]
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "dbamgr",
                        "version": __version__,
                        "rules": descriptors,
                    }
                },
                "columnKind": "unicodeCodePoints",
                "results": results,
                "properties": {"pgVersion": report.pg_version},
            }
        ],
    }


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def report_github(report: LintReport) -> str:
    """The findings as GitHub Actions workflow commands (annotations)."""
    lines = []
    for finding in report.findings:
        body = f"{finding.message}\n{finding.why}"
        if finding.alternative:
            body += f"\nSafer:\n{finding.alternative}"
        properties = ",".join(
            [
                f"file={_escape_property(finding.file)}",
                f"line={finding.line}",
                f"col={finding.column}",
                f"title={_escape_property(f'dbamgr {finding.rule}')}",
            ]
        )
        lines.append(
            f"::{_GITHUB_LEVEL[finding.severity]} {properties}::{_escape_data(body)}"
        )
    return "\n".join(lines) + ("\n" if lines else "")
