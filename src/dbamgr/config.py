"""Project configuration: ``dbamgr.toml`` or ``[tool.dbamgr]`` in pyproject.toml.

A project is a directory holding a configuration file. :func:`find_project` walks up
from a directory to the nearest one; :func:`load_project` reads a given directory.
Every key is validated: an unknown key or a value of the wrong type is reported with
the file and the dotted key, and a close match is suggested.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from dbamgr.errors import ConfigError
from dbamgr.validation import Convert, Invalid, Pattern, Positive, Range, build

CONFIG_FILE = "dbamgr.toml"
PYPROJECT_FILE = "pyproject.toml"
STATE_DIR = ".dbamgr"

_UNITS = {"ms": 0.001, "s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|min|h|d)?\s*$")


def parse_duration(value: Any) -> float:
    """Read a duration as seconds: ``"5s"``, ``"500ms"``, ``"2min"``, ``"1h"``…

    A bare number is seconds; ``0`` means no limit where a limit is meant.
    """
    if isinstance(value, bool):
        raise ValueError("expected a duration such as '5s', not a boolean")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match[1]) * _UNITS[match[2] or "s"]
    raise ValueError(
        f"{value!r} is not a duration: write a number with a unit, e.g. '5s', "
        "'500ms', '2min', '1h'"
    )


def format_duration(seconds: float) -> str:
    """Format seconds the way PostgreSQL accepts them in SET (e.g. ``'5000ms'``)."""
    return f"{round(seconds * 1000)}ms"


Duration = Annotated[float, Convert(parse_duration)]
Identifier = Annotated[
    str, Pattern(r"[A-Za-z_][A-Za-z0-9_$]{0,62}", "a plain SQL identifier")
]


@dataclass(frozen=True)
class MigrationSettings:
    """``[migrations]``: where migrations live and how they run."""

    dir: str = "migrations"
    history_schema: Identifier = "dbamgr"
    history_table: Identifier = "schema_migrations"
    lock_timeout: Duration = 5.0
    statement_timeout: Duration = 0.0
    lock_wait: Duration = 60.0
    retries: Annotated[int, Range(0, 10)] = 3
    retry_delay: Duration = 1.0


@dataclass(frozen=True)
class SeedSettings:
    """``[seeds]``: where seed data lives."""

    dir: str = "seeds"


@dataclass(frozen=True)
class ServerSettings:
    """``[server]``: the local PostgreSQL dbamgr runs when no URL is configured."""

    bin_dir: str | None = None
    data_dir: str = f"{STATE_DIR}/server"
    port: Annotated[int, Range(0, 65535)] = 0
    database: Identifier | None = None
    run_as: str = "dbamgr"
    settings: dict[str, str | int | float | bool] = field(default_factory=dict)


@dataclass(frozen=True)
class LintSettings:
    """``[lint]``: how ``dbamgr lint`` judges migrations."""

    fail_on: Literal["note", "warning", "error", "never"] = "warning"
    pg_version: Annotated[int, Range(10, 99)] | None = None
    disable: list[str] = field(default_factory=list)
    severity: dict[str, Literal["note", "warning", "error"]] = field(
        default_factory=dict
    )
    warn_after: Duration = 1.0
    error_after: Duration = 10.0


@dataclass(frozen=True)
class BackupSettings:
    """``[backup]``: the backup repository, retention and recovery targets."""

    repository: str = f"{STATE_DIR}/backups"
    compression: Literal["auto", "zstd", "lz4", "gzip", "none"] = "auto"
    compression_level: Annotated[int, Range(1, 22)] | None = None
    wal_compression: Literal["zstd", "gzip", "none"] = "none"
    archive_timeout: Duration = 60.0
    archive_wait: Duration = 120.0
    jobs: Annotated[int, Range(1, 64)] = 2
    keep_full: Annotated[int, Range(1, 1_000_000)] | None = None
    keep_days: Annotated[float, Positive()] | None = None
    keep_logical: Annotated[int, Range(1, 1_000_000)] | None = None
    rpo_seconds: Annotated[float, Positive()] | None = None
    rto_seconds: Annotated[float, Positive()] | None = None
    row_counts: bool = True


@dataclass(frozen=True)
class Environment:
    """``[environments.NAME]``: a named target database."""

    url: str | None = None
    url_env: str | None = None
    protected: bool = False
    lock_timeout: Duration | None = None
    statement_timeout: Duration | None = None

    def __post_init__(self) -> None:
        if self.url is None and self.url_env is None:
            raise ValueError("give url or url_env (the name of a variable holding it)")
        if self.url is not None and self.url_env is not None:
            raise ValueError("give url or url_env, not both")


@dataclass(frozen=True)
class ProjectConfig:
    """The whole configuration of a project."""

    migrations: MigrationSettings = field(default_factory=MigrationSettings)
    seeds: SeedSettings = field(default_factory=SeedSettings)
    server: ServerSettings = field(default_factory=ServerSettings)
    environments: dict[str, Environment] = field(default_factory=dict)
    lint: LintSettings = field(default_factory=LintSettings)
    backup: BackupSettings = field(default_factory=BackupSettings)


@dataclass(frozen=True)
class Project:
    """A project directory and its configuration."""

    root: Path
    config: ProjectConfig
    config_file: Path | None

    @property
    def name(self) -> str:
        """A name for the project, taken from its directory."""
        return self.root.name

    @property
    def migrations_dir(self) -> Path:
        return self.root / self.config.migrations.dir

    @property
    def seeds_dir(self) -> Path:
        return self.root / self.config.seeds.dir

    @property
    def state_dir(self) -> Path:
        """``.dbamgr/``: the local server, logs and other state of dbamgr."""
        return self.root / STATE_DIR

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def server_dir(self) -> Path:
        return self.root / self.config.server.data_dir

    @property
    def backup_repository(self) -> Path:
        """The backup repository's directory (relative paths are to the root)."""
        return self.root / self.config.backup.repository

    @property
    def database_name(self) -> str:
        """The database the local server holds for this project."""
        if self.config.server.database:
            return self.config.server.database
        slug = re.sub(r"[^a-z0-9_]+", "_", self.root.name.lower()).strip("_")
        if not slug or slug[0].isdigit():
            slug = f"db_{slug}"
        return slug[:63]


def parse_config(data: dict[str, Any], path: Path, prefix: str = "") -> ProjectConfig:
    """Validate a configuration mapping read from *path*."""
    try:
        return build(ProjectConfig, data, prefix)
    except Invalid as exc:
        lines = [
            f'unknown key "{p.path}"{p.message.removeprefix("unknown key")}'
            if p.unknown
            else f'"{p.path}": {p.message}'
            for p in exc.problems
        ]
        raise ConfigError(
            f"invalid configuration in {path}: " + "; ".join(lines),
            hint="fix the keys named above; see docs/configuration.md",
            file=str(path),
            problems=lines,
        ) from None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{path} is not valid TOML: {exc}",
            hint="fix the syntax at the line given",
            file=str(path),
        ) from exc
    except OSError as exc:
        raise ConfigError(
            f"cannot read {path}: {exc.strerror}", file=str(path)
        ) from exc


def load_project(root: Path) -> Project:
    """Read the project whose configuration is in directory *root*.

    ``dbamgr.toml`` is preferred; otherwise ``[tool.dbamgr]`` in pyproject.toml.
    """
    root = root.resolve()
    config_path = root / CONFIG_FILE
    if config_path.is_file():
        data = _read_toml(config_path)
        return Project(root, parse_config(data, config_path), config_path)
    pyproject = root / PYPROJECT_FILE
    if pyproject.is_file():
        section = _read_toml(pyproject).get("tool", {}).get("dbamgr")
        if isinstance(section, dict):
            config = parse_config(section, pyproject, "tool.dbamgr")
            return Project(root, config, pyproject)
    raise ConfigError(
        f"no {CONFIG_FILE} (nor [tool.dbamgr] in {PYPROJECT_FILE}) in {root}",
        hint="run `dbamgr init` there, or pass the project directory with -C",
        directory=str(root),
    )


def _has_config(directory: Path) -> bool:
    if (directory / CONFIG_FILE).is_file():
        return True
    pyproject = directory / PYPROJECT_FILE
    if not pyproject.is_file():
        return False
    try:
        with pyproject.open("rb") as handle:
            data = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError):
        return False
    return isinstance(data.get("tool", {}).get("dbamgr"), dict)


def find_project(start: Path | None = None) -> Project:
    """Find the project by walking up from *start* (default: the working directory)."""
    start = (start or Path.cwd()).resolve()
    for directory in (start, *start.parents):
        if _has_config(directory):
            return load_project(directory)
    raise ConfigError(
        f"no {CONFIG_FILE} found in {start} or any directory above it",
        hint="run `dbamgr init` to create a project, or pass its directory with -C",
        directory=str(start),
    )
