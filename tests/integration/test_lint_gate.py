"""The approval gate on protected environments, through the API and the CLI."""

from __future__ import annotations

import psycopg
import pytest
from click.testing import CliRunner
from tests.conftest import ProjectFactory

from dbamgr import migrations
from dbamgr.cli import cli
from dbamgr.errors import MigrationError
from dbamgr.target import Target

V1, V2 = "20260101000000", "20260102000000"


def columns(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'accounts' ORDER BY ordinal_position"
        ).fetchall()
    return [row[0] for row in rows]


@pytest.fixture
def lossy(project_files: ProjectFactory) -> ProjectFactory:
    project_files.add(
        V1,
        "accounts",
        "CREATE TABLE accounts (id bigint PRIMARY KEY, legacy text);\n"
        "INSERT INTO accounts VALUES (1, 'keep me');\n",
        "DROP TABLE accounts;\n",
    )
    project_files.add(
        V2,
        "drop_legacy",
        "ALTER TABLE accounts DROP COLUMN legacy;\n",
        "ALTER TABLE accounts ADD COLUMN legacy text;\n",
    )
    return project_files


def test_protected_environment_refuses_unapproved_data_loss(
    lossy: ProjectFactory, db_url: str
) -> None:
    protected = Target("prod", db_url, protected=True)
    migrations.up(lossy.project, protected, to=V1)
    with pytest.raises(MigrationError) as caught:
        migrations.up(lossy.project, protected)
    assert "would lose data without approval" in caught.value.message
    assert "up.sql:1:1 [drop-column]" in caught.value.message
    assert f"--approve {V2}" in (caught.value.hint or "")
    assert columns(db_url) == ["id", "legacy"]


def test_approve_on_the_command_line_lets_it_run(
    lossy: ProjectFactory, db_url: str
) -> None:
    protected = Target("prod", db_url, protected=True)
    report = migrations.up(lossy.project, protected, approve=[V2])
    assert [run.version for run in report.runs] == [int(V1), int(V2)]
    assert columns(db_url) == ["id"]


def test_approval_in_the_file_lets_it_run(
    project_files: ProjectFactory, db_url: str
) -> None:
    project_files.add(
        V1,
        "accounts",
        "CREATE TABLE accounts (id bigint PRIMARY KEY, legacy text);\n",
        "DROP TABLE accounts;\n",
    )
    project_files.add(
        V2,
        "drop_legacy",
        "-- dbamgr:approve data-loss copied to the archive on 2026-01-01\n"
        "ALTER TABLE accounts DROP COLUMN legacy;\n",
        "ALTER TABLE accounts ADD COLUMN legacy text;\n",
    )
    protected = Target("prod", db_url, protected=True)
    migrations.up(project_files.project, protected)
    assert columns(db_url) == ["id"]


def test_an_unprotected_environment_warns_and_goes_on(
    lossy: ProjectFactory, db_url: str
) -> None:
    report = migrations.up(lossy.project, Target("staging", db_url))
    lossy_warnings = [w for w in report.warnings if "data loss (drop-column)" in w]
    assert len(lossy_warnings) == 1
    assert columns(db_url) == ["id"]


def test_down_on_a_protected_environment_is_gated_too(
    lossy: ProjectFactory, db_url: str
) -> None:
    protected = Target("prod", db_url, protected=True)
    migrations.up(lossy.project, protected, approve=[V2])
    migrations.down(lossy.project, protected)  # re-adds the column: no loss
    with pytest.raises(MigrationError, match="drop-table"):
        migrations.down(lossy.project, protected)
    migrations.down(lossy.project, protected, approve=[V1])
    assert columns(db_url) == []


def test_cli_refuses_then_accepts_with_approve(
    lossy: ProjectFactory, db_url: str
) -> None:
    lossy.write_config(f'[environments.prod]\nurl = "{db_url}"\nprotected = true\n')
    root = str(lossy.root)
    runner = CliRunner()
    refused = runner.invoke(cli, ["-C", root, "--env", "prod", "up"])
    assert refused.exit_code == 1
    assert "dbamgr:approve data-loss" in refused.output
    assert columns(db_url) == []
    accepted = runner.invoke(cli, ["-C", root, "--env", "prod", "up", "--approve", V2])
    assert accepted.exit_code == 0, accepted.output
    assert columns(db_url) == ["id"]
