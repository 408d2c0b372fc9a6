"""The example project applies, reverts completely, and applies again."""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg

from dbamgr import migrations
from dbamgr.config import load_project
from dbamgr.server import LocalCluster
from dbamgr.target import Target
from dbamgr.verify import verify

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


def test_workflows_example_verifies_against_its_seed_data(
    tmp_path: Path, pg_cluster: LocalCluster
) -> None:
    root = tmp_path / "workflows"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".dbamgr"))
    config = root / "dbamgr.toml"
    config.write_text(
        config.read_text().replace(
            "[server]\n", f'[server]\ndata_dir = "{pg_cluster.directory}"\n'
        )
    )
    report = verify(load_project(root))
    assert report.ok, [m.failures for m in report.failed]
    assert [m.status for m in report.migrations] == ["passed"] * 4
    assert report.seeds_loaded == ["01_workflows.sql", "02_workflow_steps.sql"]
    assert report.checked_empty == []
