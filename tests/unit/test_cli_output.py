from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from dbamgr.cli import cli
from dbamgr.cli._output import get_console, styled


def test_console_prints_brackets_and_emoji_codes_as_written(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = "SELECT a[i], '[bold]hi[/bold] [red]x' FROM t -- :x: [/]"
    get_console().print(text)
    get_console().print(styled(("note:", "dim"), f" {text}"))
    lines = capsys.readouterr().out.splitlines()
    assert lines == [text, f"note: {text}"]


def _unknown_environment_hint(root: Path) -> str:
    args = ["-C", str(root), "--env", "prod", "status"]
    result = CliRunner().invoke(cli, args, env={"DATABASE_URL": None})
    assert result.exit_code == 2
    return next(line for line in result.output.splitlines() if "hint:" in line)


def test_unknown_environment_hint_says_none_is_configured(tmp_path: Path) -> None:
    (tmp_path / "dbamgr.toml").write_text('[migrations]\ndir = "migrations"\n')
    assert _unknown_environment_hint(tmp_path) == (
        "hint: no environment is configured: add [environments.prod] to dbamgr.toml"
    )


def test_unknown_environment_hint_lists_the_configured_ones(tmp_path: Path) -> None:
    (tmp_path / "dbamgr.toml").write_text(
        '[environments.staging]\nurl_env = "S"\n[environments.dev]\nurl_env = "D"\n'
    )
    assert _unknown_environment_hint(tmp_path) == (
        "hint: use one of: dev, staging; or add [environments.prod] to dbamgr.toml"
    )


def test_unknown_environment_hint_names_the_pyproject_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.dbamgr.migrations]\ndir = "m"\n')
    assert _unknown_environment_hint(tmp_path) == (
        "hint: no environment is configured: add [tool.dbamgr.environments.prod] "
        "to pyproject.toml"
    )


def test_missing_project_message_names_the_pyproject_table(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["-C", str(tmp_path / "nowhere"), "status"])
    assert result.exit_code == 2
    assert "(nor [tool.dbamgr] in pyproject.toml)" in result.output


def test_piped_output_keeps_long_lines_whole(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    line = " ".join(f"word{n}" for n in range(100))
    get_console().print(line)
    assert capsys.readouterr().out == line + "\n"


def test_piped_output_follows_columns_when_set(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "40")
    get_console().print(" ".join(f"word{n}" for n in range(100)))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) > 1 and max(len(line) for line in lines) <= 40
