"""``dbamgr schema dump`` and ``dbamgr schema diff``."""

from __future__ import annotations

import sys

import click

from dbamgr.cli._context import AppContext, json_option, pass_app, server_option
from dbamgr.cli._output import console, emit_json, styled
from dbamgr.errors import ConfigError
from dbamgr.schema import diff_snapshots, resolve_source, snapshot_url
from dbamgr.schema.diff import SINGULAR, describe_column
from dbamgr.schema.snapshot import Snapshot


@click.group()
def schema() -> None:
    """Read, print and compare database schemas."""


def render_snapshot(snapshot: Snapshot) -> None:
    """Print a snapshot as a readable outline."""
    for kind, objects in snapshot.to_dict()["objects"].items():
        if not objects:
            continue
        console.print(styled((kind, "bold"), f" ({len(objects)})"))
        for name, attributes in sorted(objects.items()):
            label = attributes.get("kind", "") if isinstance(attributes, dict) else ""
            console.print(styled(f"  {name}", (f"  {label}" if label else "", "dim")))
            if kind not in ("tables", "views"):
                continue
            columns = sorted(
                attributes["columns"].items(), key=lambda item: item[1]["position"]
            )
            for column_name, column in columns:
                console.print(f"    {column_name} {describe_column(column)}")
            for part in ("constraints", "indexes", "triggers", "policies"):
                for part_name, value in sorted(attributes[part].items()):
                    detail = value.get("definition") or value.get("command") or ""
                    console.print(
                        styled(
                            "    ", (SINGULAR[part], "dim"), f" {part_name}: {detail}"
                        )
                    )


@schema.command()
@json_option
@pass_app
def dump(app: AppContext, as_json: bool) -> None:
    """Print the target database's schema (dbamgr's own schema left out)."""
    target = app.target()
    snapshot = snapshot_url(target.url, app.project)
    if as_json:
        sys.stdout.write(snapshot.to_json())
    else:
        console.print(f"target: {target.display}")
        render_snapshot(snapshot)


@schema.command()
@click.argument("before")
@click.argument("after")
@server_option("Build migrations@V sources there.")
@json_option
@pass_app
def diff(
    app: AppContext, before: str, after: str, server_url: str | None, as_json: bool
) -> None:
    """Compare two schemas; exit 1 when they differ.

    BEFORE and AFTER are each a database URL, an environment name (or "local"),
    a snapshot .json file, or migrations@VERSION (the schema the migrations up
    to VERSION build on a scratch database; migrations@latest for all).
    """
    try:
        project = app.project
    except ConfigError:
        project = None
    old, old_label = resolve_source(before, project, server_url=server_url)
    new, new_label = resolve_source(after, project, server_url=server_url)
    result = diff_snapshots(old, new)
    if as_json:
        emit_json({"before": old_label, "after": new_label, "changes": result.changes})
    elif result:
        console.print(f"--- {old_label}\n+++ {new_label}")
        console.print(result.render())
        console.print(f"{len(result)} difference(s)")
    else:
        console.print("the schemas are the same")
    if result:
        sys.exit(1)
