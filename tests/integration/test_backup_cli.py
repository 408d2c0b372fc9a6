"""The backup commands end to end on a project's own local server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result
from tests.integration.backup_support import reachable_dir, switch_and_wait

from dbamgr.cli import cli
from dbamgr.config import load_project
from dbamgr.server import project_cluster


@pytest.fixture
def project() -> Iterator[Path]:
    with reachable_dir() as root:
        (root / "dbamgr.toml").write_text(
            '[backup]\nkeep_full = 1\nrpo_seconds = 3600\nwal_compression = "zstd"\n'
        )
        try:
            yield root
        finally:
            project_cluster(load_project(root)).remove()


def run(project: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["-C", str(project), *args], env={})


def as_json(result: Result) -> object:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_archive_backup_verify_drill_and_expire_from_the_command_line(
    project: Path,
) -> None:
    status = run(project, "archive", "status", "--json")
    assert status.exit_code == 1
    assert "archive_mode is off" in " ".join(json.loads(status.stdout)["problems"])

    failed = run(project, "backup", "base")
    assert failed.exit_code == 1
    assert "archiving is off" in failed.output
    assert run(project, "backup", "list", "--json").stdout.strip() == "[]"

    setup = as_json(run(project, "archive", "enable", "--json"))
    assert isinstance(setup, dict) and setup["applied"] and setup["restarted"]
    assert "wal push" in setup["settings"]["archive_command"]

    first = as_json(run(project, "backup", "base", "--json"))
    assert isinstance(first, dict) and first["status"] == "complete"
    beat = run(project, "heartbeat")
    assert beat.exit_code == 0, beat.output
    second = as_json(run(project, "backup", "base", "--json"))
    assert isinstance(second, dict)

    listed = as_json(run(project, "backup", "list", "--json"))
    assert [b["id"] for b in listed] == [first["id"], second["id"]]  # type: ignore[union-attr]
    # any unambiguous prefix names a backup (both may share their second)
    prefix = second["id"][:15]
    if first["id"].startswith(prefix):
        prefix = second["id"]
    shown = as_json(run(project, "backup", "show", prefix, "--json"))
    assert isinstance(shown, dict) and shown["id"] == second["id"]

    cluster = project_cluster(load_project(project))
    switch_and_wait(cluster)
    status_report = as_json(run(project, "archive", "status", "--json"))
    assert isinstance(status_report, dict) and status_report["healthy"]
    assert status_report["repository_newest"] is not None

    verified = as_json(run(project, "backup", "verify", "--json"))
    assert isinstance(verified, dict) and verified["ok"]

    drill = run(project, "drill", "--json")
    report = json.loads(drill.stdout)
    assert drill.exit_code == 0, report
    assert report["ok"] and report["rpo_seconds"] is not None

    dry = as_json(run(project, "backup", "expire", "--dry-run", "--json"))
    assert isinstance(dry, dict) and list(dry["remove"]) == [first["id"]]
    assert len(as_json(run(project, "backup", "list", "--json"))) == 2  # type: ignore[arg-type]
    gone = as_json(run(project, "backup", "expire", "--json"))
    assert isinstance(gone, dict) and list(gone["remove"]) == [first["id"]]
    assert len(as_json(run(project, "backup", "list", "--json"))) == 1  # type: ignore[arg-type]


def test_schedule_and_remote_settings_are_printed(tmp_path: Path) -> None:
    (tmp_path / "dbamgr.toml").write_text("")
    cron = run(tmp_path, "backup", "schedule")
    assert cron.exit_code == 0
    lines = [line for line in cron.stdout.splitlines() if not line.startswith("#")]
    assert len(lines) == 4
    assert any("backup base" in line and line.startswith("30 1 ") for line in lines)
    assert any(line.startswith("* * * * *") and "heartbeat" in line for line in lines)
    units = run(tmp_path, "backup", "schedule", "--format", "systemd", "--at", "02:15")
    assert "OnCalendar=*-*-* 02:15:00" in units.stdout
    assert units.stdout.count("[Timer]") == 4


def test_restore_needs_exactly_one_target(tmp_path: Path) -> None:
    (tmp_path / "dbamgr.toml").write_text("")
    result = run(
        tmp_path, "restore", "--to-lsn", "0/1", "--latest", "--target-dir", "x"
    )
    assert result.exit_code == 2
    assert "exactly one of" in result.output
    result = run(tmp_path, "restore", "--to-time", "soon", "--target-dir", "x")
    assert result.exit_code == 2
    assert '"soon" is not a time' in result.output


def test_archive_enable_prints_the_settings_for_another_server(
    tmp_path: Path, db_url: str
) -> None:
    (tmp_path / "dbamgr.toml").write_text('[backup]\nrepository = "/srv/backups"\n')
    result = CliRunner().invoke(
        cli, ["-C", str(tmp_path), "archive", "enable"], env={"DATABASE_URL": db_url}
    )
    assert result.exit_code == 0, result.output
    assert "archive_mode = 'on'" in result.stdout
    assert "wal push --repo /srv/backups %p %f" in result.stdout
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SHOW archive_mode").fetchone()
    assert row == ("off",)
