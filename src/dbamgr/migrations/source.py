"""Reading migrations from disk, in the layouts of the common tools.

===============  ==========================================================
layout           files
===============  ==========================================================
``directory``    ``<version>_<name>/up.sql`` and ``down.sql`` (Diesel; an
                 optional ``metadata.toml`` may set ``run_in_transaction``)
``pair``         ``<version>_<name>.up.sql`` and ``.down.sql`` (golang-migrate)
``single``       ``<version>_<name>.sql`` with ``-- migrate:up`` and
                 ``-- migrate:down`` sections (dbmate)
===============  ==========================================================

Versions are digits, optionally split by ``-`` (``2019-02-26-002946``); they are
compared as numbers once the separators are gone, never as strings. Layouts can be
mixed in one directory. Duplicate versions and unreadable names are errors; stray
files are warnings. Each is reported with its path.
"""

from __future__ import annotations

import hashlib
import os
import re
import tomllib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from dbamgr.errors import SourceError
from dbamgr.sql import (
    Directive,
    LineIndex,
    Statement,
    find_directives,
    split_statements,
)
from dbamgr.sql import has_statements as _has_statements

DIRECTORY, PAIR, SINGLE = "directory", "pair", "single"

_BASENAME = re.compile(r"^(?P<version>\d+(?:-\d+)*)(?:_(?P<name>.*))?$")
_DBMATE_MARKER = re.compile(
    r"^--\s*migrate:(?P<direction>up|down)\b(?P<options>[^\n]*)$", re.M
)
_NO_TRANSACTION = re.compile(r"--\s*dbamgr:no-transaction\b.*")
_DIRECTORY_FILES = frozenset({"up.sql", "down.sql", "metadata.toml"})
_IGNORED_NAMES = frozenset({"README", "README.md", "README.txt", "README.rst"})


@dataclass(frozen=True)
class Script:
    """The SQL of one direction of a migration, and where it came from."""

    path: Path
    text: str
    line_offset: int = 0
    in_transaction: bool = True

    @cached_property
    def directives(self) -> tuple[Directive, ...]:
        return tuple(find_directives(self.text))

    @cached_property
    def statements(self) -> list[Statement]:
        """The statements, with lines and columns counted in the file."""
        found = split_statements(self.text)
        if not self.line_offset:
            return found
        return [
            Statement(s.index, s.text, s.start, s.line + self.line_offset, s.column)
            for s in found
        ]

    @cached_property
    def _lines(self) -> LineIndex:
        return LineIndex(self.text)

    def locate(self, offset: int) -> tuple[int, int]:
        """The (line, column) in the file of character *offset* of the text."""
        line, column = self._lines.locate(offset)
        return line + self.line_offset, column

    @cached_property
    def has_statements(self) -> bool:
        return _has_statements(self.text)

    def directive(self, name: str) -> Directive | None:
        """The first directive called *name*, if any."""
        return next((d for d in self.directives if d.name == name), None)


@dataclass(frozen=True)
class Migration:
    """One migration: its version, name, up and (possibly) down."""

    version: int
    label: str
    name: str
    layout: str
    path: Path
    up: Script
    down: Script | None

    @property
    def ident(self) -> str:
        """The version and name as written, e.g. ``20261203120000_add_priority``."""
        return f"{self.label}_{self.name}" if self.name else self.label

    @cached_property
    def checksum(self) -> str:
        """sha256 of the up and the down text (line endings normalized)."""
        digest = hashlib.sha256(_normalize(self.up.text).encode())
        digest.update(b"\0")
        if self.down is not None:
            digest.update(_normalize(self.down.text).encode())
        return digest.hexdigest()

    @property
    def irreversible_reason(self) -> str | None:
        """The reason given by ``-- dbamgr:irreversible``, if declared."""
        directive = self.up.directive("irreversible")
        return directive.argument if directive else None

    @property
    def has_down(self) -> bool:
        """Whether a down script exists and holds at least one statement."""
        return self.down is not None and self.down.has_statements

    def __str__(self) -> str:
        return self.ident


@dataclass(frozen=True)
class Problem:
    """Something wrong with the files, with the path it concerns."""

    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass
class MigrationSet:
    """The migrations found in a directory, sorted by version."""

    directory: Path
    migrations: list[Migration]
    warnings: list[Problem] = field(default_factory=list)

    @cached_property
    def by_version(self) -> dict[int, Migration]:
        return {m.version: m for m in self.migrations}

    def find(self, version: str | int) -> Migration | None:
        """The migration whose version equals *version* (any separators)."""
        return self.by_version.get(parse_version(version))


def _normalize(text: str) -> str:
    return text.replace("\r\n", "\n")


def parse_version(value: str | int) -> int:
    """The numeric value of a version as written (``2019-02-26-002946``…)."""
    if isinstance(value, int):
        return value
    text = value.strip()
    match = _BASENAME.match(text)
    if match is None:
        raise SourceError(
            f'"{value}" is not a migration version',
            hint="give the digits that start the migration's name, e.g. 20261203120000",
        )
    return int(match["version"].replace("-", ""))


def _read(path: Path, problems: list[Problem]) -> str | None:
    try:
        return _normalize(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        problems.append(Problem(path, f"is not UTF-8 text (byte {exc.start})"))
    except OSError as exc:
        problems.append(Problem(path, f"cannot be read: {exc.strerror}"))
    return None


def _script(
    path: Path, text: str, *, line_offset: int = 0, force_autocommit: bool = False
) -> Script:
    in_transaction = not force_autocommit
    if in_transaction and text.startswith("--"):
        first_line = text.split("\n", 1)[0].strip()
        in_transaction = not _NO_TRANSACTION.fullmatch(first_line)
    return Script(path, text, line_offset, in_transaction)


class _Loader:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.errors: list[Problem] = []
        self.warnings: list[Problem] = []
        self.found: list[Migration] = []
        self.pairs: dict[str, dict[str, Path]] = {}

    def load(self) -> MigrationSet:
        if not self.directory.is_dir():
            raise SourceError(
                f"the migrations directory {self.directory} does not exist",
                hint="create it with `dbamgr init`, or set [migrations] dir",
                directory=str(self.directory),
            )
        with os.scandir(self.directory) as scan:
            entries = sorted(scan, key=lambda e: e.name)
        for entry in entries:
            name = entry.name
            if name.startswith(".") or name in _IGNORED_NAMES:
                continue
            path = self.directory / name
            if entry.is_dir():
                self._directory(path)
            elif name.endswith((".up.sql", ".down.sql")):
                base, _, direction = name[: -len(".sql")].rpartition(".")
                self.pairs.setdefault(base, {})[direction] = path
            elif name.endswith(".sql"):
                self._single(path)
            else:
                self.warnings.append(Problem(path, "stray file, not a migration"))
        for base, files in sorted(self.pairs.items()):
            self._pair(base, files)
        self._check_duplicates()
        for migration in self.found:
            self._check_directives(migration)
        if self.errors:
            listing = "\n".join(f"  {problem}" for problem in self.errors)
            raise SourceError(
                f"{len(self.errors)} problem(s) in {self.directory}:\n{listing}",
                hint="rename or fix the files listed",
                problems=[str(problem) for problem in self.errors],
            )
        self.found.sort(key=lambda m: m.version)
        return MigrationSet(self.directory, self.found, self.warnings)

    def _parse_name(self, path: Path, base: str) -> tuple[str, str] | None:
        match = _BASENAME.match(base)
        if match is None:
            self.errors.append(
                Problem(
                    path,
                    f'cannot read a version from "{base}": name migrations '
                    "<version>_<name>, e.g. 20261203120000_add_priority",
                )
            )
            return None
        return match["version"], match["name"] or ""

    def _add(
        self, path: Path, base: str, layout: str, up: Script, down: Script | None
    ) -> None:
        parsed = self._parse_name(path, base)
        if parsed is None:
            return
        label, name = parsed
        version = int(label.replace("-", ""))
        self.found.append(Migration(version, label, name, layout, path, up, down))

    def _directory(self, path: Path) -> None:
        children = set(os.listdir(path))
        if "up.sql" not in children:
            if "down.sql" in children or _BASENAME.match(path.name):
                self.errors.append(Problem(path, "has no up.sql"))
            else:
                self.warnings.append(Problem(path, "stray directory, not a migration"))
            return
        for child in sorted(children - _DIRECTORY_FILES):
            if not child.startswith("."):
                self.warnings.append(Problem(path / child, "stray file, not used"))
        in_transaction = True
        if "metadata.toml" in children:
            in_transaction = self._metadata(path / "metadata.toml")
        up_path, down_path = path / "up.sql", path / "down.sql"
        up_text = _read(up_path, self.errors)
        down_text = _read(down_path, self.errors) if "down.sql" in children else None
        if up_text is None:
            return
        up = _script(up_path, up_text, force_autocommit=not in_transaction)
        down = None
        if down_text is not None:
            down = _script(down_path, down_text, force_autocommit=not in_transaction)
        self._add(path, path.name, DIRECTORY, up, down)

    def _metadata(self, path: Path) -> bool:
        """Diesel's metadata.toml: ``run_in_transaction = false``."""
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            self.errors.append(Problem(path, f"is not valid TOML: {exc}"))
            return True
        value = data.get("run_in_transaction", True)
        if not isinstance(value, bool):
            self.errors.append(
                Problem(path, "run_in_transaction must be true or false")
            )
            return True
        return value

    def _pair(self, base: str, files: dict[str, Path]) -> None:
        up_path = files.get("up")
        if up_path is None:
            self.errors.append(Problem(files["down"], "has no matching .up.sql file"))
            return
        up_text = _read(up_path, self.errors)
        down_path = files.get("down")
        down_text = _read(down_path, self.errors) if down_path else None
        if up_text is None:
            return
        down = (
            _script(down_path, down_text)
            if down_path and down_text is not None
            else None
        )
        self._add(up_path, base, PAIR, _script(up_path, up_text), down)

    def _single(self, path: Path) -> None:
        base = path.name[: -len(".sql")]
        if self._parse_name(path, base) is None:
            return
        text = _read(path, self.errors)
        if text is None:
            return
        markers = list(_DBMATE_MARKER.finditer(text))
        ups = [m for m in markers if m["direction"] == "up"]
        downs = [m for m in markers if m["direction"] == "down"]
        if len(ups) != 1 or len(downs) > 1:
            self.errors.append(
                Problem(
                    path,
                    "a single-file migration needs one '-- migrate:up' line and at "
                    "most one '-- migrate:down' line (the dbmate format)",
                )
            )
            return
        scripts: dict[str, Script] = {}
        for index, marker in enumerate(markers):
            end = markers[index + 1].start() if index + 1 < len(markers) else len(text)
            body_start = marker.end() + 1
            body = text[body_start:end] if body_start <= end else ""
            line_offset = text.count("\n", 0, body_start)
            autocommit = "transaction:false" in marker["options"].replace(" ", "")
            script = _script(
                path, body, line_offset=line_offset, force_autocommit=autocommit
            )
            scripts[marker["direction"]] = script
        self._add(path, base, SINGLE, scripts["up"], scripts.get("down"))

    def _check_duplicates(self) -> None:
        seen: dict[int, Migration] = {}
        for migration in self.found:
            other = seen.get(migration.version)
            if other is not None:
                self.errors.append(
                    Problem(
                        migration.path,
                        f"has version {migration.version}, like {other.path}: "
                        "give one of them a new version",
                    )
                )
            else:
                seen[migration.version] = migration

    def _check_directives(self, migration: Migration) -> None:
        for script in (migration.up, migration.down):
            if script is None:
                continue
            for directive in script.directives:
                self._check_directive(migration, script, directive)
        if migration.irreversible_reason is not None and migration.has_down:
            self.errors.append(
                Problem(
                    migration.path,
                    "declares -- dbamgr:irreversible but also has a down: remove "
                    "one of the two",
                )
            )

    def _check_directive(
        self, migration: Migration, script: Script, directive: Directive
    ) -> None:
        line = directive.line + script.line_offset
        where = f"{script.path.name}:{line}"
        if not directive.known:
            guess = directive.suggestion()
            advice = f' (did you mean "dbamgr:{guess}"?)' if guess else ""
            self.errors.append(
                Problem(
                    script.path,
                    f'line {line}: unknown directive "dbamgr:{directive.name}"{advice}',
                )
            )
        elif directive.name == "no-transaction" and directive.line != 1:
            self.errors.append(
                Problem(
                    script.path,
                    f"line {line}: -- dbamgr:no-transaction must be the first line "
                    "of the file to take effect",
                )
            )
        elif directive.name == "irreversible":
            if script is not migration.up:
                self.errors.append(
                    Problem(
                        script.path, f"{where}: dbamgr:irreversible belongs in the up"
                    )
                )
            elif not directive.argument:
                self.errors.append(
                    Problem(
                        script.path,
                        f"line {line}: -- dbamgr:irreversible needs a reason, e.g. "
                        "-- dbamgr:irreversible drops the legacy audit data",
                    )
                )


def load_migrations(directory: Path) -> MigrationSet:
    """Read every migration in *directory*.

    Raises :class:`SourceError` listing every unreadable name, duplicate version,
    lone down file or misplaced directive, each with its path.
    """
    return _Loader(directory).load()
