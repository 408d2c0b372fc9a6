"""The example project applies, reverts completely, and applies again."""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg

from dbamgr import migrations
from dbamgr.config import load_project
from dbamgr.target import Target

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "workflows"


def user_objects(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT c.relkind::text, c.relname FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' ORDER BY 1, 2"
        ).fetchall()
    return [(row[0], row[1]) for row in rows]


def test_workflows_example_round_trips(tmp_path: Path, target: Target) -> None:
    root = tmp_path / "workflows"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".dbamgr"))
    project = load_project(root)

    migrations.up(project, target)
    applied = user_objects(target.url)
    assert ("r", "workflows") in applied and ("r", "workflow_steps") in applied
    assert ("i", "workflows_pending_by_priority") in applied

    migrations.down(project, target, to="0")
    assert user_objects(target.url) == []

    migrations.up(project, target)
    assert user_objects(target.url) == applied
