from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from dbamgr.cli import cli


def all_commands(
    group: click.Group, prefix: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], click.Command]]:
    ctx = click.Context(group)
    found = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, name
        path = (*prefix, name)
        found.append((path, command))
        if isinstance(command, click.Group):
            found += all_commands(command, path)
    return found


@pytest.mark.parametrize(
    ("path", "command"),
    all_commands(cli),
    ids=lambda v: " ".join(v) if isinstance(v, tuple) else "",
)
def test_every_command_has_help(path: tuple[str, ...], command: click.Command) -> None:
    assert command.help, f"dbamgr {' '.join(path)} has no docstring"
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0
    assert command.help.split("\n")[0].strip() in result.output


def test_every_reporting_command_has_json() -> None:
    reporting = {"status", "up", "down", "redo", "history", "resolve", "new", "init"}
    for path, command in all_commands(cli):
        if path[-1] in reporting:
            assert any("--json" in p.opts for p in command.params), path


def test_a_mistyped_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["stauts"])
    assert result.exit_code == 2
    assert "Did you mean 'status'?" in result.output


def test_missing_project_exits_2_with_a_hint(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["-C", str(tmp_path), "status"])
    assert result.exit_code == 2
    assert "dbamgr init" in result.output


def test_init_creates_a_project_and_keeps_it(tmp_path: Path) -> None:
    runner = CliRunner()
    first = runner.invoke(cli, ["init", str(tmp_path)])
    assert first.exit_code == 0, first.output
    assert (tmp_path / "dbamgr.toml").exists()
    assert (tmp_path / "migrations").is_dir() and (tmp_path / "seeds").is_dir()
    assert ".dbamgr/" in (tmp_path / ".gitignore").read_text()
    (tmp_path / "dbamgr.toml").write_text("# mine\n")
    second = runner.invoke(cli, ["init", str(tmp_path)])
    assert second.exit_code == 0
    assert (tmp_path / "dbamgr.toml").read_text() == "# mine\n"
    assert (tmp_path / ".gitignore").read_text().count(".dbamgr/") == 1


def test_init_here_suggests_commands_without_a_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    monkeypatch.chdir(tmp_path)
    here = runner.invoke(cli, ["init"])
    assert here.exit_code == 0, here.output
    assert "next: dbamgr new create_first_table, edit" in here.output
    assert "then dbamgr up\n" in here.output
    elsewhere = runner.invoke(cli, ["init", str(tmp_path / "other")])
    assert f"next: dbamgr -C {tmp_path / 'other'} new create_first_table" in (
        elsewhere.output
    )


def test_new_refuses_a_bad_name(tmp_path: Path) -> None:
    CliRunner().invoke(cli, ["init", str(tmp_path)])
    result = CliRunner().invoke(cli, ["-C", str(tmp_path), "new", "Add Priority!"])
    assert result.exit_code == 2
    assert "cannot name a migration" in result.output


def test_new_follows_the_layout_in_use(tmp_path: Path) -> None:
    runner = CliRunner()
    runner.invoke(cli, ["init", str(tmp_path)])
    (tmp_path / "migrations" / "1_a.up.sql").write_text("SELECT 1;")
    (tmp_path / "migrations" / "1_a.down.sql").write_text("SELECT 1;")
    result = runner.invoke(cli, ["-C", str(tmp_path), "new", "add_priority", "--json"])
    assert result.exit_code == 0, result.output
    created = sorted(p.name for p in (tmp_path / "migrations").glob("*add_priority*"))
    assert len(created) == 2
    assert all(name.endswith((".up.sql", ".down.sql")) for name in created)


def test_a_closed_output_pipe_ends_quietly_with_the_sigpipe_status(
    tmp_path: Path,
) -> None:
    # enough output to fill a pipe (lint's report of 300 migrations), read one
    # line of, then closed: as `dbamgr lint | head -1` does
    (tmp_path / "dbamgr.toml").write_text('[migrations]\ndir = "migrations"\n')
    for index in range(300):
        folder = tmp_path / "migrations" / f"{index + 1}_step"
        folder.mkdir(parents=True)
        (folder / "up.sql").write_text(
            f"ALTER TABLE t ADD COLUMN c{index} int NOT NULL DEFAULT 0;\n"
            f"CREATE INDEX i{index} ON t (c{index});\n"
        )
        (folder / "down.sql").write_text(f"ALTER TABLE t DROP COLUMN c{index};\n")
    command = [sys.executable, "-m", "dbamgr", "-C", str(tmp_path), "lint"]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.readline()
    process.stdout.close()
    assert process.wait(timeout=60) == 141
    assert process.stderr.read() == b""
