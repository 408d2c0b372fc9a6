from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from dbamgr.cli import cli
from dbamgr.db import check_url, connect
from dbamgr.errors import ConfigError


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    (tmp_path / "dbamgr.toml").write_text(
        '[migrations]\ndir = "migrations"\n\n'
        '[environments.prod]\nurl = "postgresql://app:secret@db:abc/shop"\n'
    )
    (tmp_path / "migrations").mkdir()
    return tmp_path


def run(project_dir: Path, *args: str, url: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(
        cli, ["-C", str(project_dir), *args], env={"DATABASE_URL": url}
    )
    return result.exit_code, result.output


def test_an_unparsable_database_url_exits_2_naming_its_variable(
    project_dir: Path,
) -> None:
    code, output = run(
        project_dir, "--debug", "schema", "dump", url="postgresql://u:secret@[::1:1/x"
    )
    assert code == 2, output
    assert (
        'error: DATABASE_URL: "postgresql://u:****@[::1:1/x" is not a database URL'
        in (output)
    )
    assert "secret" not in output


def test_a_server_option_that_is_no_url_exits_2(project_dir: Path) -> None:
    code, output = run(project_dir, "verify", "--server", "notaurl")
    assert code == 2, output
    assert 'error: --server: "notaurl" is not a database URL' in output
    assert "hint: fix --server: write it as postgresql://USER@HOST" in output


def test_a_port_that_is_not_a_number_exits_2(project_dir: Path) -> None:
    code, output = run(
        project_dir, "status", url="postgresql://u:secret@127.0.0.1:abc/x"
    )
    assert code == 2, output
    assert 'the port "abc" is not a number' in output
    assert "secret" not in output


def test_an_environment_url_that_is_no_url_names_its_section(
    project_dir: Path,
) -> None:
    code, output = run(project_dir, "--env", "prod", "status")
    assert code == 2, output
    assert 'the url of [environments.prod]: "postgresql://app:****@db:abc/shop"' in (
        output
    )
    assert "secret" not in output


def test_a_password_libpq_repeats_in_its_reason_is_masked() -> None:
    with pytest.raises(ConfigError) as caught:
        check_url("postgresql://u:s%zz@127.0.0.1/x")
    assert "s%zz" not in str(caught.value)
    assert caught.value.context["url"] == "postgresql://u:****@127.0.0.1/x"


def test_connect_refuses_an_unparsable_url_as_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="is not a database URL"):
        connect("postgresql://u:secret@[::1/x")
