"""The lint's driver: every statement of every up and down, in version order.

The ups are read in order over one :class:`~dbamgr.lint.context.Schema`, so a
statement is judged with what the earlier migrations created; each down is read
right after its up, against the schema its up leaves (and changes nothing in it).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from dbamgr.lint.context import Context, Schema, Settings
from dbamgr.lint.model import (
    DATA_LOSS,
    Finding,
    LintReport,
    Rule,
    ScriptReport,
    Severity,
    StatementReport,
)
from dbamgr.lint.nodes import ParseFailure, body, kind, parse
from dbamgr.lint.rules import ANALYZERS, RULES, TransactionTracker
from dbamgr.lint.suppress import Directives, read_directives
from dbamgr.migrations.source import Migration, Script

logger = logging.getLogger(__name__)

UP, DOWN = "up", "down"

_KINDS = {
    "AlterTableStmt": "ALTER TABLE",
    "CreateStmt": "CREATE TABLE",
    "IndexStmt": "CREATE INDEX",
    "DropStmt": "DROP",
    "RenameStmt": "RENAME",
    "UpdateStmt": "UPDATE",
    "DeleteStmt": "DELETE",
    "InsertStmt": "INSERT",
    "TruncateStmt": "TRUNCATE",
    "VariableSetStmt": "SET",
    "TransactionStmt": "TRANSACTION",
    "SelectStmt": "SELECT",
}


@dataclass
class LintConfig:
    """How to judge: version, thresholds, fail level, disabled rules, severities."""

    settings: Settings = field(default_factory=Settings)
    fail_on: Severity | None = Severity.WARNING
    disabled: frozenset[str] = frozenset()
    severities: dict[str, Severity] = field(default_factory=dict)


def statement_kind(node_kind: str) -> str:
    """A statement kind for people: ``AlterTableStmt`` -> ``ALTER TABLE``."""
    return _KINDS.get(node_kind, node_kind.removesuffix("Stmt"))


def display(path: Path) -> str:
    """*path* relative to the working directory when below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


class Linter:
    """Lints scripts in order, keeping the schema they build."""

    def __init__(self, config: LintConfig, schema: Schema | None = None) -> None:
        self.config = config
        self.schema = schema or Schema()
        self.rules: dict[str, Rule] = RULES

    def lint_migration(self, migration: Migration) -> list[ScriptReport]:
        """Lint the up, then the down against the schema the up leaves."""
        self.schema.begin_migration()
        reports = [self.lint_script(migration.up, UP, migration)]
        if migration.down is not None and migration.down.has_statements:
            self.schema.begin_down(self.schema.created)
            reports.append(self.lint_script(migration.down, DOWN, migration))
            self.schema.readonly = False
        return reports

    def lint_script(
        self, script: Script, direction: str, migration: Migration | None = None
    ) -> ScriptReport:
        """Every statement of one script; findings include suppressed ones."""
        file = display(script.path)
        ident = migration.ident if migration else None
        report = ScriptReport(
            ident or file,
            migration.version if migration else 0,
            direction,
            file,
            script.in_transaction,
        )
        ctx = Context(
            self.rules,
            self.schema,
            self.config.settings,
            file=file,
            direction=direction,
            migration=ident,
        )
        tracker = TransactionTracker(ctx, script.in_transaction)
        for statement in script.statements:
            try:
                node = parse(statement.text)
            except ParseFailure as exc:
                ctx.start(statement.text, statement.line, statement.column, {})
                # the finding points where the parser stopped, as up's error does;
                # the statement keeps its start, where the directives look for it
                offset = len(statement.text) if exc.offset is None else exc.offset
                line, column = script.locate(statement.start + offset)
                ctx.report(
                    "syntax-error", f"the parser rejects it: {exc}", at=(line, column)
                )
                report.statements.append(self._statement(ctx, "?"))
                continue
            node_kind = kind(node)
            fields = body(node)
            ctx.start(statement.text, statement.line, statement.column, fields)
            tracker.before(node_kind, fields)
            for analyse in ANALYZERS.get(node_kind, ()):
                analyse(ctx, fields)
            tracker.after(node_kind, fields)
            report.statements.append(self._statement(ctx, node_kind))
        left_open = tracker.finish()
        if left_open is not None and report.statements:
            line, column, text = left_open
            ctx.start(text, line, column, {})
            ctx.report(
                "transaction-control",
                "BEGIN is never committed: the file ends inside the transaction",
            )
            opened = next(s for s in report.statements if s.line == line)
            opened.findings += ctx.findings
        self._apply_directives(script, report, ctx)
        return report

    def _statement(self, ctx: Context, node_kind: str) -> StatementReport:
        return StatementReport(
            ctx.file,
            ctx.line,
            ctx.column,
            ctx.text,
            statement_kind(node_kind),
            list(ctx.locks),
            ctx.in_transaction,
            ctx.estimate,
            list(ctx.findings),
        )

    def _apply_directives(
        self, script: Script, report: ScriptReport, ctx: Context
    ) -> None:
        """Config overrides, then ignores and approvals; report unused ignores."""
        directives = read_directives(script, self.rules)
        for index, statement in enumerate(report.statements):
            kept = []
            for finding in statement.findings:
                if finding.rule in self.config.disabled:
                    continue
                override = self.config.severities.get(finding.rule)
                if override is not None:
                    finding.severity = override
                _suppress(finding, index, directives)
                kept.append(finding)
            statement.findings = kept
        self._directive_findings(report, directives, ctx)

    def _directive_findings(
        self, report: ScriptReport, directives: Directives, ctx: Context
    ) -> None:
        extra: list[tuple[int, str, str]] = [
            (line, "invalid-directive", message)
            for line, message in directives.problems
        ]
        for ignore in directives.ignores:
            unused = [r for r in ignore.rules if r not in ignore.used]
            if unused and "unused-ignore" not in self.config.disabled:
                extra.append(
                    (
                        ignore.line,
                        "unused-ignore",
                        f"-- dbamgr:ignore {','.join(unused)} matches no finding in "
                        "the statement below it",
                    )
                )
        for line, rule, message in extra:
            ctx.start(f"-- dbamgr: (line {line})", line, 1, {})
            ctx.report(rule, message)
            target = next((s for s in report.statements if s.line >= line), None) or (
                report.statements[-1] if report.statements else None
            )
            if target is None:
                report.statements.append(self._statement(ctx, "comment"))
            else:
                target.findings += ctx.findings


def _suppress(finding: Finding, index: int, directives: Directives) -> None:
    if finding.hazard == DATA_LOSS:
        approval = directives.approval(index)
        if approval is not None:
            finding.approved = approval.reason
            finding.suppressed = f"approved: {approval.reason}"
    reason = directives.ignore_reason(index, finding.rule)
    if reason is not None:
        finding.suppressed = f"ignored: {reason}"


def collect(report: LintReport, scripts: Iterable[ScriptReport]) -> LintReport:
    """Add *scripts* to *report*, sorting findings into reported and suppressed."""
    for script in scripts:
        report.scripts.append(script)
        report.statements += len(script.statements)
        for statement in script.statements:
            for finding in statement.findings:
                if finding.suppressed is None:
                    report.findings.append(finding)
                else:
                    report.suppressed.append(finding)
    return report


def lint_sql(
    text: str,
    *,
    path: str = "migration.sql",
    in_transaction: bool | None = None,
    config: LintConfig | None = None,
    schema: Schema | None = None,
) -> LintReport:
    """Lint one SQL text as one script (for tests, editors and the API).

    With *in_transaction* None, the text runs in a transaction unless its first
    line is ``-- dbamgr:no-transaction``.
    """
    config = config or LintConfig()
    first = text.split("\n", 1)[0].strip()
    if in_transaction is None:
        in_transaction = not first.startswith("-- dbamgr:no-transaction")
    script = Script(Path(path), text, 0, in_transaction)
    linter = Linter(config, schema)
    linter.schema.begin_migration()
    report = LintReport(config.settings.pg_version, None, fail_on=config.fail_on)
    return collect(report, [linter.lint_script(script, UP)])
