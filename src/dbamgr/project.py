"""Creating a project: ``dbamgr init``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dbamgr.config import CONFIG_FILE, STATE_DIR, load_project

CONFIG_TEMPLATE = """\
# dbamgr project configuration: see docs/configuration.md

[migrations]
dir = "migrations"
lock_timeout = "5s"         # how long a statement may wait for a lock
# statement_timeout = "0"   # 0: no limit
# lock_wait = "60s"         # how long a second runner waits for the first
# history_schema = "dbamgr"
# history_table = "schema_migrations"

[seeds]
dir = "seeds"

# With no environment selected and no DATABASE_URL, commands act on a local
# PostgreSQL that dbamgr runs under .dbamgr/server/.
# [server]
# bin_dir = "/usr/lib/postgresql/16/bin"   # default: the embedded PostgreSQL

# [environments.prod]
# url_env = "PROD_DATABASE_URL"   # the variable that holds the URL
# protected = true
"""


@dataclass
class InitReport:
    """What ``dbamgr init`` created, and what was there already."""

    root: str
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)


def init_project(root: Path) -> InitReport:
    """Scaffold a project in *root*: dbamgr.toml, migrations/, seeds/, and an
    ignore rule for .dbamgr/. Existing files are left as they are."""
    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    report = InitReport(str(root))

    config = root / CONFIG_FILE
    if config.exists():
        report.existing.append(CONFIG_FILE)
    else:
        config.write_text(CONFIG_TEMPLATE)
        report.created.append(CONFIG_FILE)

    project = load_project(root)
    for directory in (project.migrations_dir, project.seeds_dir):
        name = directory.relative_to(root).as_posix() + "/"
        if directory.is_dir():
            report.existing.append(name)
        else:
            directory.mkdir(parents=True)
            (directory / ".gitkeep").touch()
            report.created.append(name)

    ignore = root / ".gitignore"
    rule = f"{STATE_DIR}/"
    lines = ignore.read_text().splitlines() if ignore.exists() else []
    if rule in lines or STATE_DIR in lines:
        report.existing.append(f".gitignore ({rule})")
    else:
        with ignore.open("a") as handle:
            if lines and lines[-1] != "":
                handle.write("\n")
            handle.write(f"# dbamgr's local server, logs and scratch files\n{rule}\n")
        report.created.append(f".gitignore ({rule})")
    return report
