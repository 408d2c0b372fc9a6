"""Reversible migrations: sources, history, runner and the verbs over them.

>>> from dbamgr.config import find_project
>>> from dbamgr.target import resolve_target
>>> from dbamgr import migrations
>>> project = find_project()
>>> report = migrations.up(project, resolve_target(project))
"""

from dbamgr.migrations.commands import (
    MigrationRun,
    Resolution,
    RunReport,
    down,
    history,
    redo,
    resolve,
    status,
    up,
)
from dbamgr.migrations.new import NewMigration, new_migration
from dbamgr.migrations.source import Migration, MigrationSet, Script, load_migrations
from dbamgr.migrations.status import MigrationState, StatusReport

__all__ = [
    "Migration",
    "MigrationRun",
    "MigrationSet",
    "MigrationState",
    "NewMigration",
    "Resolution",
    "RunReport",
    "Script",
    "StatusReport",
    "down",
    "history",
    "load_migrations",
    "new_migration",
    "redo",
    "resolve",
    "status",
    "up",
]
