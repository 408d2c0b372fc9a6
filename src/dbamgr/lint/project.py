"""Linting a project: its configuration, its migrations, its live database."""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from pglast import parser

from dbamgr.config import LintSettings, Project
from dbamgr.db import connect
from dbamgr.errors import ConfigError, UsageError
from dbamgr.lint.analyze import UP, LintConfig, Linter, collect
from dbamgr.lint.catalog import LiveCatalog
from dbamgr.lint.context import Schema, Settings
from dbamgr.lint.model import LintReport, ScriptReport, Severity
from dbamgr.lint.rules import RULES
from dbamgr.migrations.source import Script, load_migrations
from dbamgr.target import Target

logger = logging.getLogger(__name__)

PARSER_VERSION: int = parser.get_postgresql_version()[0]
"""The PostgreSQL major version of pglast's parser: the default judged."""


def _check_rule_ids(ids: Sequence[str], key: str) -> None:
    for rule in ids:
        if rule not in RULES:
            close = difflib.get_close_matches(rule, list(RULES), n=1)
            advice = f' (did you mean "{close[0]}"?)' if close else ""
            raise ConfigError(
                f'[lint] {key} names unknown rule "{rule}"{advice}',
                hint="see `dbamgr lint --rules` for the rule ids",
                rule=rule,
            )


def lint_config(
    settings: LintSettings,
    *,
    pg_version: int | None = None,
    fail_on: str | None = None,
) -> LintConfig:
    """The :class:`LintConfig` from ``[lint]`` and command-line overrides."""
    _check_rule_ids(settings.disable, "disable")
    _check_rule_ids(list(settings.severity), "severity")
    level = fail_on or settings.fail_on
    version = pg_version or settings.pg_version or PARSER_VERSION
    if version < 10:
        raise UsageError(
            f'PostgreSQL version "{version}" is not supported',
            hint="give a major version from 10 on, e.g. --pg-version 16",
        )
    return LintConfig(
        Settings(version, settings.warn_after, settings.error_after),
        None if level == "never" else Severity.parse(level),
        frozenset(settings.disable),
        {rule: Severity.parse(value) for rule, value in settings.severity.items()},
    )


@contextmanager
def live_catalog(target: Target | None) -> Iterator[LiveCatalog | None]:
    """A catalog over *target* for sizes and types, or None without a target."""
    if target is None:
        yield None
        return
    conn = connect(target.url, purpose="lint")
    try:
        catalog = LiveCatalog(conn)
        logger.info(
            "reading sizes from %s (PostgreSQL %s)", target, catalog.major_version
        )
        yield catalog
    finally:
        conn.close()


def lint_project(
    project: Project,
    target: Target | None = None,
    *,
    pg_version: int | None = None,
    fail_on: str | None = None,
    paths: Sequence[Path] = (),
) -> LintReport:
    """Lint every up and down of *project* (or the SQL files *paths*).

    With a *target*, the live table sizes drive severities and estimates, column
    types come from its catalog, and its server's version is the default one.
    """
    with live_catalog(target) as catalog:
        version = pg_version
        if version is None and catalog is not None:
            version = catalog.major_version
        config = lint_config(project.config.lint, pg_version=version, fail_on=fail_on)
        linter = Linter(config, Schema(catalog))
        report = LintReport(
            config.settings.pg_version,
            target.display if target is not None else None,
            fail_on=config.fail_on,
        )
        if paths:
            files = [
                found
                for path in paths
                for found in (sorted(path.rglob("*.sql")) if path.is_dir() else [path])
            ]
            return collect(report, [_lint_file(linter, path) for path in files])
        source = load_migrations(project.migrations_dir)
        for migration in source.migrations:
            collect(report, linter.lint_migration(migration))
        return report


def _lint_file(linter: Linter, path: Path) -> ScriptReport:
    try:
        text = path.read_text(encoding="utf-8").replace("\r\n", "\n")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}", file=str(path)) from exc
    first = text.split("\n", 1)[0].strip()
    script = Script(path, text, 0, not first.startswith("-- dbamgr:no-transaction"))
    linter.schema.begin_migration()
    return linter.lint_script(script, UP)
