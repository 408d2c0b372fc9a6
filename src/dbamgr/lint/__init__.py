"""Safety review of migrations before anything runs: ``dbamgr lint`` and ``plan``.

Every statement of every up and down is parsed with PostgreSQL's parser (pglast)
and judged for data loss, locks, rewrites, scans under lock, blocking index
builds, backward incompatibility, transaction problems and type choices, knowing
what earlier migrations created, the server version and (with a target) the live
table sizes.

>>> from dbamgr.lint import lint_sql
>>> [f.rule for f in lint_sql("CREATE INDEX i ON t (a);").findings][:1]
['create-index-non-concurrently']
"""

from dbamgr.lint.analyze import LintConfig, Linter, lint_sql
from dbamgr.lint.context import Schema, Settings
from dbamgr.lint.formats import report_github, report_json, report_sarif
from dbamgr.lint.gate import check_approval, data_loss_findings
from dbamgr.lint.markdown import render_markdown
from dbamgr.lint.model import (
    Finding,
    LintReport,
    Lock,
    LockClaim,
    Rule,
    Severity,
    StatementReport,
)
from dbamgr.lint.plan import ChangePlan, plan_changes
from dbamgr.lint.project import PARSER_VERSION, lint_config, lint_project
from dbamgr.lint.rules import RULES

__all__ = [
    "PARSER_VERSION",
    "RULES",
    "ChangePlan",
    "Finding",
    "LintConfig",
    "LintReport",
    "Linter",
    "Lock",
    "LockClaim",
    "Rule",
    "Schema",
    "Settings",
    "Severity",
    "StatementReport",
    "check_approval",
    "data_loss_findings",
    "lint_config",
    "lint_project",
    "lint_sql",
    "plan_changes",
    "render_markdown",
    "report_github",
    "report_json",
    "report_sarif",
]
