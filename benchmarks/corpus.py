"""What the migration benchmarks share: writing a project, applying it with psql."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

MigrationSQL = Callable[[int], tuple[str, str]]


def write_project(root: Path, count: int, migration_sql: MigrationSQL) -> list[Path]:
    """Write dbamgr.toml and *count* migrations (directory layout) under *root*;
    return the up files in order."""
    (root / "dbamgr.toml").write_text('[migrations]\ndir = "migrations"\n')
    ups = []
    for index in range(count):
        folder = root / "migrations" / f"{20260101000000 + index}_step_{index}"
        folder.mkdir(parents=True)
        up, down = migration_sql(index)
        (folder / "up.sql").write_text(up)
        (folder / "down.sql").write_text(down)
        ups.append(folder / "up.sql")
    return ups


def psql_apply(psql: str, url: str, ups: list[Path]) -> float:
    """Apply each of *ups* with its own ``psql -1 -f``; return the seconds taken."""
    started = time.perf_counter()
    for path in ups:
        subprocess.run(
            [psql, "-X", "-q", "-1", "-v", "ON_ERROR_STOP=1", "-f", str(path), url],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return time.perf_counter() - started
