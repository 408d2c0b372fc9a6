"""``dbamgr new``: the files of a new migration, with a version newer than all.

The version is the time, unless a migration's version is as new or newer (a
clock behind, a version written by hand): then the one after the newest, so that
a new migration is always the newest and ``up`` never refuses it as out of order.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dbamgr.config import Project
from dbamgr.errors import SourceError, UsageError
from dbamgr.migrations.source import DIRECTORY, PAIR, SINGLE, load_migrations

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^[a-z0-9][a-z0-9_]*$")

UP_TEMPLATE = """\
-- {ident}: up
-- Write the change here. dbamgr runs this file in one transaction, with
-- lock_timeout set. For CREATE INDEX CONCURRENTLY and the like, make the first
-- line of the file: -- dbamgr:no-transaction
"""

DOWN_TEMPLATE = """\
-- {ident}: down
-- Undo everything up.sql does, so that the schema is exactly as it was before.
"""


@dataclass(frozen=True)
class NewMigration:
    """The files ``dbamgr new`` created."""

    version: str
    name: str
    layout: str
    files: list[str]
    after: str | None = None
    """The newest existing migration, when the clock was not past its version."""


_TIMESTAMP = "%Y%m%d%H%M%S"


def _existing(source_dir: Path) -> tuple[str, dict[int, str]]:
    """The most used layout in *source_dir*, and the versions already taken with
    the migration each names."""
    try:
        source = load_migrations(source_dir)
    except SourceError:
        # an inconsistent directory: still avoid every number that starts a name
        numbers = (re.match(r"^(\d+(?:-\d+)*)", p.name) for p in source_dir.iterdir())
        return DIRECTORY, {int(m[1].replace("-", "")): m.string for m in numbers if m}
    layouts = [m.layout for m in source.migrations]
    layout = max(set(layouts), key=layouts.count) if layouts else DIRECTORY
    return layout, {m.version: m.ident for m in source.migrations}


def _next_version(moment: datetime, taken: Collection[int]) -> tuple[int, int | None]:
    """The version for a migration created at *moment*, and the taken version
    that decided it, if one did.

    The time, unless a taken version is as new or newer: then the one after the
    newest (a second later, when that version is a timestamp).
    """
    version = int(moment.strftime(_TIMESTAMP))
    newest = max(taken, default=None)
    if newest is None or version > newest:
        return version, None
    try:
        stamp = datetime.strptime(str(newest), _TIMESTAMP)
    except ValueError:
        stamp = None
    if stamp is None or len(str(newest)) != len(str(version)):
        return newest + 1, newest
    return int((stamp + timedelta(seconds=1)).strftime(_TIMESTAMP)), newest


def new_migration(
    project: Project,
    name: str,
    *,
    layout: str | None = None,
    now: datetime | None = None,
) -> NewMigration:
    """Create the files of a new migration named *name*, versioned by the time.

    When a migration's version is as new as the time or newer (a clock behind, a
    version written by hand), the new one takes the next version after it, so that
    a new migration is always the newest. The layout follows the one most used in
    the directory (the directory layout if it is empty), unless *layout* is given.
    """
    slug = name.strip().lower().replace("-", "_").replace(" ", "_")
    if not _NAME.match(slug):
        raise UsageError(
            f'"{name}" cannot name a migration',
            hint="use lowercase letters, digits and underscores, e.g. add_priority",
        )
    directory = project.migrations_dir
    directory.mkdir(parents=True, exist_ok=True)
    usual, taken = _existing(directory)
    layout = layout or usual
    if layout not in (DIRECTORY, PAIR, SINGLE):
        raise UsageError(
            f'unknown layout "{layout}"', hint="use directory, pair or single"
        )
    version, newest = _next_version(now or datetime.now(UTC), taken)
    after = None if newest is None else taken[newest]
    if after is not None:
        logger.info("version %s follows the newest migration, %s", version, after)
    ident = f"{version}_{slug}"
    up_text = UP_TEMPLATE.format(ident=ident)
    down_text = DOWN_TEMPLATE.format(ident=ident)
    if layout == DIRECTORY:
        folder = directory / ident
        folder.mkdir()
        files = {folder / "up.sql": up_text, folder / "down.sql": down_text}
    elif layout == PAIR:
        files = {
            directory / f"{ident}.up.sql": up_text,
            directory / f"{ident}.down.sql": down_text,
        }
    else:
        files = {
            directory
            / f"{ident}.sql": f"-- migrate:up\n{up_text}\n-- migrate:down\n{down_text}"
        }
    for path, text in files.items():
        path.write_text(text)
    return NewMigration(str(version), slug, layout, [str(p) for p in files], after)
