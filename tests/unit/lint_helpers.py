"""Helpers shared by the lint tests: lint SQL after a base migration."""

from __future__ import annotations

from pathlib import Path

from dbamgr.lint import LintConfig, Linter, Schema, Settings
from dbamgr.lint.model import Finding, ScriptReport
from dbamgr.migrations.source import Script

BASE = """\
CREATE TABLE u (id bigint PRIMARY KEY, a bigint);
CREATE TABLE u2 (id bigint NOT NULL);
CREATE TABLE t (id bigint PRIMARY KEY, a integer, b text, v varchar(10),
                n numeric(10,2), ts timestamp, m mood);
CREATE INDEX t_a_idx ON t (a);
CREATE TABLE m (id bigint, at date) PARTITION BY RANGE (at);
CREATE TABLE m_2020 PARTITION OF m FOR VALUES FROM ('2020-01-01') TO ('2021-01-01');
CREATE TABLE m_old (id bigint, at date);
CREATE MATERIALIZED VIEW mv AS SELECT 1 AS x;
CREATE VIEW v AS SELECT 1 AS x;
"""


def lint_after(
    sql: str,
    *,
    base: str = BASE,
    pg_version: int = 18,
    in_transaction: bool | None = None,
    schema: Schema | None = None,
) -> ScriptReport:
    """Lint *sql* as a second migration, after *base* created the tables."""
    config = LintConfig(Settings(pg_version))
    linter = Linter(config, schema)
    linter.schema.begin_migration()
    linter.lint_script(Script(Path("base.sql"), base), "up")
    linter.schema.begin_migration()
    if in_transaction is None:
        in_transaction = not sql.startswith("-- dbamgr:no-transaction")
    return linter.lint_script(Script(Path("change.sql"), sql, 0, in_transaction), "up")


def findings(sql: str, **kwargs: object) -> list[Finding]:
    """The findings of *sql* (not suppressed), after the base migration."""
    report = lint_after(sql, **kwargs)  # type: ignore[arg-type]
    return [f for s in report.statements for f in s.findings if f.suppressed is None]


def rules(sql: str, **kwargs: object) -> set[str]:
    """The rule ids found in *sql*."""
    return {f.rule for f in findings(sql, **kwargs)}
