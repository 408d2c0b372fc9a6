from __future__ import annotations

from pathlib import Path

import pytest

from dbamgr.config import find_project, load_project, parse_config, parse_duration
from dbamgr.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5s", 5), ("500ms", 0.5), ("2min", 120), ("1h", 3600), ("1d", 86400), (3, 3)],
)
def test_durations_are_read_with_units(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["5 parsecs", "-1", True, "s"])
def test_bad_durations_are_refused(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_unknown_key_is_named_with_a_suggestion() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"migrations": {"lock_timeot": "5s"}}, Path("dbamgr.toml"))
    message = str(caught.value)
    assert 'unknown key "migrations.lock_timeot"' in message
    assert 'did you mean "lock_timeout"' in message
    assert "dbamgr.toml" in message


def test_unknown_key_in_an_environment_is_named() -> None:
    data = {"environments": {"prod": {"url": "postgresql://x/y", "protectd": True}}}
    with pytest.raises(ConfigError) as caught:
        parse_config(data, Path("dbamgr.toml"))
    assert 'unknown key "environments.prod.protectd"' in str(caught.value)
    assert 'did you mean "protected"' in str(caught.value)


def test_wrong_type_is_named_with_its_key() -> None:
    data = {"environments": {"prod": {"url": "postgresql://x/y", "protected": "yes!"}}}
    with pytest.raises(ConfigError) as caught:
        parse_config(data, Path("dbamgr.toml"))
    assert '"environments.prod.protected"' in str(caught.value)
    assert "expected true or false" in str(caught.value)


def test_environment_needs_exactly_one_url_source() -> None:
    with pytest.raises(ConfigError, match="url or url_env"):
        parse_config({"environments": {"dev": {"protected": False}}}, Path("x.toml"))
    both = {"environments": {"dev": {"url": "postgresql://a/b", "url_env": "X"}}}
    with pytest.raises(ConfigError, match="not both"):
        parse_config(both, Path("x.toml"))


def test_history_names_must_be_identifiers() -> None:
    with pytest.raises(ConfigError, match="history_table"):
        parse_config({"migrations": {"history_table": "drop table x"}}, Path("x"))


def test_defaults_apply_to_an_empty_file(tmp_path: Path) -> None:
    (tmp_path / "dbamgr.toml").write_text("")
    project = load_project(tmp_path)
    settings = project.config.migrations
    assert settings.lock_timeout == 5.0
    assert settings.history_schema == "dbamgr"
    assert project.migrations_dir == tmp_path.resolve() / "migrations"


def test_project_is_found_by_walking_up(tmp_path: Path) -> None:
    (tmp_path / "dbamgr.toml").write_text('[migrations]\ndir = "db/migrations"\n')
    deep = tmp_path / "src" / "app"
    deep.mkdir(parents=True)
    project = find_project(deep)
    assert project.root == tmp_path.resolve()
    assert project.migrations_dir == tmp_path.resolve() / "db" / "migrations"


def test_pyproject_tool_section_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.dbamgr.migrations]\ndir = "sql"\n'
    )
    project = find_project(tmp_path)
    assert project.migrations_dir.name == "sql"
    assert project.config_file == tmp_path.resolve() / "pyproject.toml"


def test_pyproject_errors_name_the_tool_prefix(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.dbamgr]\nmigration = 1\n")
    with pytest.raises(ConfigError) as caught:
        load_project(tmp_path)
    assert 'unknown key "tool.dbamgr.migration"' in str(caught.value)
    assert "pyproject.toml" in str(caught.value)


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "dbamgr.toml").write_text("[migrations\n")
    with pytest.raises(ConfigError) as caught:
        load_project(tmp_path)
    assert str(tmp_path / "dbamgr.toml") in str(caught.value)


def test_missing_project_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        find_project(tmp_path)
    assert caught.value.hint is not None
    assert "dbamgr init" in caught.value.hint


def test_database_name_is_derived_from_the_directory(tmp_path: Path) -> None:
    root = tmp_path / "My-Shop 2"
    root.mkdir()
    (root / "dbamgr.toml").write_text("")
    assert load_project(root).database_name == "my_shop_2"
