"""Schema-aware and version-aware judgements, suppression and alternatives."""

from __future__ import annotations

import pytest
from tests.unit.lint_helpers import findings, lint_after, rules

from dbamgr.lint import Lock, lint_sql
from dbamgr.lint.nodes import ColumnType
from dbamgr.lint.typechange import judge


def test_statements_on_a_table_created_in_the_same_migration_carry_no_hazard() -> None:
    sql = """\
    CREATE TABLE audit (id bigint PRIMARY KEY, at timestamptz, who text);
    CREATE INDEX audit_at ON audit (at);
    ALTER TABLE audit ALTER COLUMN who SET NOT NULL;
    ALTER TABLE audit ADD CONSTRAINT audit_who CHECK (who <> '');
    ALTER TABLE audit ADD COLUMN n bigint GENERATED ALWAYS AS IDENTITY;
    """
    assert rules(sql) == set()


def test_the_same_statements_on_an_existing_table_are_hazards() -> None:
    sql = """\
    CREATE INDEX t_ts ON t (ts);
    ALTER TABLE t ALTER COLUMN b SET NOT NULL;
    """
    assert {"create-index-non-concurrently", "set-not-null"} <= rules(sql)


@pytest.mark.parametrize(
    ("change", "rewrites"),
    [
        ("ALTER TABLE t ALTER COLUMN v TYPE varchar(20)", False),
        ("ALTER TABLE t ALTER COLUMN v TYPE text", False),
        ("ALTER TABLE t ALTER COLUMN v TYPE varchar", False),
        ("ALTER TABLE t ALTER COLUMN v TYPE varchar(5)", True),
        ("ALTER TABLE t ALTER COLUMN n TYPE numeric(12,2)", False),
        ("ALTER TABLE t ALTER COLUMN n TYPE numeric", False),
        ("ALTER TABLE t ALTER COLUMN n TYPE numeric(12,3)", True),
        ("ALTER TABLE t ALTER COLUMN a TYPE bigint", True),
        ("ALTER TABLE t ALTER COLUMN b TYPE varchar(20)", True),
        ("ALTER TABLE t ALTER COLUMN v TYPE varchar(30) USING upper(v)", True),
    ],
)
def test_type_changes_are_judged_from_the_earlier_migrations(
    change: str, rewrites: bool
) -> None:
    report = lint_after(change + ";")
    claim = report.statements[0].locks[0]
    assert claim.lock is Lock.ACCESS_EXCLUSIVE
    assert claim.rewrite is rewrites
    assert ("change-column-type" in rules(change + ";")) is rewrites


def test_timestamp_to_timestamptz_depends_on_version_and_time_zone() -> None:
    old, new = ColumnType("timestamp"), ColumnType("timestamptz")
    assert judge(old, new, pg_version=11, timezone="UTC").rewrite is True
    assert judge(old, new, pg_version=16, timezone="UTC").rewrite is False
    assert judge(old, new, pg_version=16, timezone="Europe/Paris").rewrite is True
    assert judge(old, new, pg_version=16, timezone=None).rewrite is True


def test_set_not_null_after_a_validated_check_needs_no_scan_from_pg12() -> None:
    base_extra = (
        "ALTER TABLE t ADD CONSTRAINT t_b_nn CHECK (b IS NOT NULL) NOT VALID;\n"
        "ALTER TABLE t VALIDATE CONSTRAINT t_b_nn;\n"
    )
    from tests.unit.lint_helpers import BASE

    sql = "ALTER TABLE t ALTER COLUMN b SET NOT NULL;"
    assert "set-not-null" not in rules(sql, base=BASE + base_extra, pg_version=12)
    assert "set-not-null" in rules(sql, base=BASE + base_extra, pg_version=11)


def test_set_not_null_after_an_unvalidated_check_still_scans() -> None:
    from tests.unit.lint_helpers import BASE

    extra = "ALTER TABLE t ADD CONSTRAINT t_b_nn CHECK (b IS NOT NULL) NOT VALID;\n"
    sql = "ALTER TABLE t ALTER COLUMN b SET NOT NULL;"
    assert "set-not-null" in rules(sql, base=BASE + extra, pg_version=16)


def test_a_check_on_another_column_does_not_help_set_not_null() -> None:
    from tests.unit.lint_helpers import BASE

    extra = "ALTER TABLE t ADD CONSTRAINT t_v_nn CHECK (v IS NOT NULL);\n"
    sql = "ALTER TABLE t ALTER COLUMN b SET NOT NULL;"
    assert "set-not-null" in rules(sql, base=BASE + extra, pg_version=16)


def test_a_constant_default_rewrites_only_before_pg11() -> None:
    sql = "ALTER TABLE t ADD COLUMN flag boolean DEFAULT false;"
    assert "add-column-volatile-default" in rules(sql, pg_version=10)
    assert "add-column-volatile-default" not in rules(sql, pg_version=11)


def test_an_unknown_function_in_a_default_may_rewrite() -> None:
    found = findings("ALTER TABLE t ADD COLUMN code text DEFAULT make_code();")
    assert [f.rule for f in found if f.rule == "add-column-volatile-default"]
    assert "make_code() is unknown here" in next(
        f.message for f in found if f.rule == "add-column-volatile-default"
    )


def test_reindex_concurrently_is_offered_from_pg12_only() -> None:
    new = findings("REINDEX INDEX t_a_idx;", pg_version=12)
    old = findings("REINDEX INDEX t_a_idx;", pg_version=11)
    assert "REINDEX INDEX CONCURRENTLY t_a_idx;" in (new[0].alternative or "")
    assert [f.alternative for f in old if f.rule == "reindex-non-concurrently"] == [
        None
    ]


def test_detach_concurrently_is_offered_from_pg14_only() -> None:
    sql = "ALTER TABLE m DETACH PARTITION m_2020;"
    modern = next(f for f in findings(sql, pg_version=14) if f.alternative)
    assert "DETACH PARTITION m_2020 CONCURRENTLY" in (modern.alternative or "")
    old = findings(sql, pg_version=13)
    assert all(f.alternative is None for f in old if f.rule.startswith("detach"))


def test_enum_add_value_in_a_transaction_fails_before_pg12() -> None:
    sql = "ALTER TYPE mood ADD VALUE 'meh' AFTER 'ok';"
    assert "not-allowed-in-transaction" in rules(sql, pg_version=11)
    assert "not-allowed-in-transaction" not in rules(sql, pg_version=12)


def test_a_down_dropping_what_its_up_created_is_a_note() -> None:
    from dbamgr.lint import LintConfig, Linter

    linter = Linter(LintConfig())
    linter.schema.begin_migration()
    from pathlib import Path

    from dbamgr.migrations.source import Script

    linter.lint_script(Script(Path("up.sql"), "CREATE TABLE k (id bigint);"), "up")
    linter.schema.begin_down(linter.schema.created)
    down = linter.lint_script(Script(Path("down.sql"), "DROP TABLE k;"), "down")
    dropped = [f for f in down.statements[0].findings if f.rule == "drop-table"]
    assert [f.severity.label for f in dropped] == ["note"]
    assert dropped[0].is_data_loss


def test_alternatives_are_concrete_sql_that_parses() -> None:
    from pglast import parser

    sql = """\
    ALTER TABLE t ADD CONSTRAINT t_a_positive CHECK (a > 0);
    ALTER TABLE t ADD FOREIGN KEY (a) REFERENCES u (id);
    ALTER TABLE t ALTER COLUMN b SET NOT NULL;
    CREATE UNIQUE INDEX t_b_key ON t (b);
    ALTER TABLE t ADD CONSTRAINT t_b_uniq UNIQUE (b);
    ALTER TABLE t ADD COLUMN ref bigint REFERENCES u (id);
    """
    found = [f for f in findings(sql) if f.alternative]
    assert len(found) >= 6
    for finding in found:
        parser.parse_sql(finding.alternative)  # raises if it is not valid SQL
    check = next(f for f in found if f.rule == "add-check-constraint")
    assert check.alternative == (
        "ALTER TABLE t ADD CONSTRAINT t_a_positive CHECK (a > 0) NOT VALID;\n"
        "ALTER TABLE t VALIDATE CONSTRAINT t_a_positive;"
    )
    unnamed = next(
        f
        for f in found
        if f.rule == "add-foreign-key" and "t_a_fkey" in (f.alternative or "")
    )
    assert "NOT VALID" in (unnamed.alternative or "")


def test_multiple_alters_are_combined_into_one() -> None:
    sql = (
        "ALTER TABLE t ADD COLUMN y bigint;\n"
        "ALTER TABLE t ALTER COLUMN b SET DEFAULT 'x';\n"
    )
    combined = next(f for f in findings(sql) if f.rule == "multiple-alter-table")
    assert combined.alternative == (
        "ALTER TABLE t\n    ADD COLUMN y bigint,\n    ALTER COLUMN b SET DEFAULT 'x';"
    )


def test_findings_point_at_file_line_and_column() -> None:
    report = lint_sql("SELECT 1;\n\n   CREATE INDEX i ON t (a);\n", path="x/up.sql")
    finding = next(
        f for f in report.findings if f.rule == "create-index-non-concurrently"
    )
    assert (finding.file, finding.line, finding.column) == ("x/up.sql", 3, 4)
    assert finding.statement == "CREATE INDEX i ON t (a)"


def test_ignore_silences_one_rule_on_the_statement_below_only() -> None:
    sql = (
        "-- dbamgr:ignore create-index-non-concurrently t has ten rows\n"
        "CREATE INDEX i ON t (a);\n"
        "CREATE INDEX j ON t (b);\n"
    )
    report = lint_after(sql)
    first, second = report.statements
    assert [f.suppressed for f in first.findings if f.rule.startswith("create")] == [
        "ignored: t has ten rows"
    ]
    assert [f.suppressed for f in second.findings if f.rule.startswith("create")] == [
        None
    ]


def test_an_ignore_of_an_unknown_rule_is_reported_with_a_suggestion() -> None:
    found = findings("-- dbamgr:ignore drop-colum gone\nALTER TABLE t DROP COLUMN b;")
    message = next(f.message for f in found if f.rule == "invalid-directive")
    assert 'did you mean "drop-column"' in message


def test_approve_data_loss_needs_a_reason() -> None:
    sql = "-- dbamgr:approve data-loss\nALTER TABLE t DROP COLUMN b;"
    assert {"invalid-directive", "drop-column"} <= rules(sql)
    approved = (
        "-- dbamgr:approve data-loss copied to t_archive\nALTER TABLE t DROP COLUMN b;"
    )
    assert "drop-column" not in rules(approved)


def test_a_backfill_alternative_batches_the_same_condition() -> None:
    from pglast import parser

    sql = "UPDATE t SET a = 0 WHERE a IS NULL OR a < 0 RETURNING id;"
    backfill = next(f for f in findings(sql) if f.rule == "backfill-in-migration")
    batch = (backfill.alternative or "").splitlines()[-1]
    assert batch == (
        "UPDATE t SET a = 0 WHERE (a IS NULL OR a < 0) AND ctid = ANY (ARRAY("
        "SELECT ctid FROM t WHERE a IS NULL OR a < 0 LIMIT 10000)) RETURNING id;"
    )
    parser.parse_sql(batch)


def test_a_rename_alternative_uses_the_known_column_type() -> None:
    found = findings("ALTER TABLE t RENAME COLUMN v TO label;")
    rename = next(f for f in found if f.rule == "rename-column")
    assert (rename.alternative or "").startswith(
        "ALTER TABLE t ADD COLUMN label varchar(10);"
    )


def test_lint_settings_reject_unknown_rules_and_override_severities() -> None:
    from dbamgr.config import LintSettings
    from dbamgr.errors import ConfigError
    from dbamgr.lint import Severity, lint_config

    with pytest.raises(ConfigError, match='did you mean "prefer-text"'):
        lint_config(LintSettings(disable=["prefer-txt"]))
    config = lint_config(
        LintSettings(severity={"prefer-text": "error"}, fail_on="never")
    )
    assert config.fail_on is None
    assert config.severities == {"prefer-text": Severity.ERROR}
    report = lint_sql("CREATE TABLE k (name varchar(9));", config=config)
    assert [(f.rule, f.severity) for f in report.findings] == [
        ("prefer-text", Severity.ERROR)
    ]
    assert not report.failed


@pytest.mark.parametrize(
    ("sql", "rule"),
    [
        ("DROP OWNED BY legacy_app;", "drop-cascade"),
        ("ALTER TABLE ALL IN TABLESPACE old SET TABLESPACE fast;", "set-tablespace"),
        (
            "MERGE INTO t USING u ON t.id = u.id WHEN MATCHED THEN DELETE;",
            "delete-rows",
        ),
        (
            "MERGE INTO t USING u ON t.id = u.id WHEN MATCHED THEN UPDATE SET a = 1;",
            "backfill-in-migration",
        ),
        ("ALTER TABLE t ADD CONSTRAINT t_a_nn NOT NULL a;", "set-not-null"),
    ],
)
def test_other_spellings_of_the_same_hazard(sql: str, rule: str) -> None:
    assert rule in rules(sql)


def test_attaching_an_index_partition_scans_nothing() -> None:
    sql = "ALTER INDEX t_a_idx ATTACH PARTITION m_2020_at_idx;"
    assert "attach-partition" not in rules(sql)
