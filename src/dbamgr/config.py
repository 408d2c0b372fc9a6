"""Project configuration: ``dbamgr.toml`` or ``[tool.dbamgr]`` in pyproject.toml.

A project is a directory holding a configuration file. :func:`find_project` walks up
from a directory to the nearest one; :func:`load_project` reads a given directory.
Every key is validated: an unknown key or a value of the wrong type is reported with
the file and the dotted key, and a close match is suggested.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from dbamgr.errors import ConfigError

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


Duration = Annotated[float, BeforeValidator(parse_duration)]
_IDENT = r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class MigrationSettings(_Section):
    """``[migrations]``: where migrations live and how they run."""

    dir: str = "migrations"
    history_schema: Annotated[str, Field(pattern=_IDENT)] = "dbamgr"
    history_table: Annotated[str, Field(pattern=_IDENT)] = "schema_migrations"
    lock_timeout: Duration = 5.0
    statement_timeout: Duration = 0.0
    lock_wait: Duration = 60.0
    retries: Annotated[int, Field(ge=0, le=10)] = 3
    retry_delay: Duration = 1.0


class SeedSettings(_Section):
    """``[seeds]``: where seed data lives."""

    dir: str = "seeds"


class ServerSettings(_Section):
    """``[server]``: the local PostgreSQL dbamgr runs when no URL is configured."""

    bin_dir: str | None = None
    data_dir: str = f"{STATE_DIR}/server"
    port: Annotated[int, Field(ge=0, le=65535)] = 0
    database: Annotated[str, Field(pattern=_IDENT)] | None = None
    run_as: str = "dbamgr"
    settings: dict[str, str | int | float | bool] = Field(default_factory=dict)


class BackupSettings(_Section):
    """``[backup]``: the backup repository, retention and recovery targets."""

    repository: str = f"{STATE_DIR}/backups"
    compression: Literal["auto", "zstd", "lz4", "gzip", "none"] = "auto"
    compression_level: Annotated[int, Field(ge=1, le=22)] | None = None
    wal_compression: Literal["zstd", "gzip", "none"] = "none"
    archive_timeout: Duration = 60.0
    archive_wait: Duration = 120.0
    jobs: Annotated[int, Field(ge=1, le=64)] = 2
    keep_full: Annotated[int, Field(ge=1)] | None = None
    keep_days: Annotated[float, Field(gt=0)] | None = None
    keep_logical: Annotated[int, Field(ge=1)] | None = None
    rpo_seconds: Annotated[float, Field(gt=0)] | None = None
    rto_seconds: Annotated[float, Field(gt=0)] | None = None
    row_counts: bool = True


class Environment(_Section):
    """``[environments.NAME]``: a named target database."""

    url: str | None = None
    url_env: str | None = None
    protected: bool = False
    lock_timeout: Duration | None = None
    statement_timeout: Duration | None = None

    @model_validator(mode="after")
    def _one_url(self) -> Environment:
        if self.url is None and self.url_env is None:
            raise ValueError("give url or url_env (the name of a variable holding it)")
        if self.url is not None and self.url_env is not None:
            raise ValueError("give url or url_env, not both")
        return self


class ProjectConfig(_Section):
    """The whole configuration of a project."""

    migrations: MigrationSettings = Field(default_factory=MigrationSettings)
    seeds: SeedSettings = Field(default_factory=SeedSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    backup: BackupSettings = Field(default_factory=BackupSettings)
    environments: dict[str, Environment] = Field(default_factory=dict)


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


def _describe_location(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def _known_keys(loc: tuple[int | str, ...]) -> list[str]:
    """The valid keys of the table at *loc*, to suggest a correction."""
    model: type[BaseModel] = ProjectConfig
    parts = list(loc)
    while parts:
        field = model.model_fields.get(str(parts.pop(0)))
        if field is None:
            return []
        annotation = field.annotation
        if get_origin(annotation) is dict:
            annotation = get_args(annotation)[1]
            if parts:
                parts.pop(0)  # the table's own name, e.g. an environment's
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return sorted(model.model_fields)


def _config_error(path: Path, prefix: str, exc: ValidationError) -> ConfigError:
    lines = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        key = _describe_location(loc)
        if prefix:
            key = f"{prefix}.{key}"
        if err["type"] == "extra_forbidden":
            known = _known_keys(loc[:-1])
            close = difflib.get_close_matches(str(loc[-1]), known, n=1)
            advice = f' (did you mean "{close[0]}"?)' if close else ""
            if known:
                advice += f"; valid keys here: {', '.join(known)}"
            lines.append(f'unknown key "{key}"{advice}')
        else:
            message = err["msg"].removeprefix("Value error, ")
            lines.append(f'"{key}": {message[:1].lower()}{message[1:]}')
    detail = "; ".join(lines)
    return ConfigError(
        f"invalid configuration in {path}: {detail}",
        hint="fix the keys named above; see docs/configuration.md",
        file=str(path),
        problems=lines,
    )


def parse_config(data: dict[str, Any], path: Path, prefix: str = "") -> ProjectConfig:
    """Validate a configuration mapping read from *path*."""
    try:
        return ProjectConfig.model_validate(data)
    except ValidationError as exc:
        raise _config_error(path, prefix, exc) from None


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
