"""``dbamgr server``: the project's local PostgreSQL."""

from __future__ import annotations

import os
import sys

import click

from dbamgr.cli._context import AppContext, json_option, pass_app
from dbamgr.cli._output import console, emit_json, styled
from dbamgr.server import LocalCluster, project_cluster


def _cluster(app: AppContext) -> LocalCluster:
    return project_cluster(app.project)


@click.group()
def server() -> None:
    """Run the project's local PostgreSQL (under .dbamgr/server/)."""


@server.command()
@json_option
@pass_app
def start(app: AppContext, as_json: bool) -> None:
    """Start the local server (creating it on first use)."""
    cluster = _cluster(app)
    was_running = cluster.running
    cluster.start()
    url = cluster.ensure_database(app.project.database_name)
    if as_json:
        emit_json(cluster.status())
        return
    state = "already running" if was_running else "started"
    version = cluster.binaries.version
    console.print(f"PostgreSQL {version} {state}: {url}")


@server.command()
@json_option
@pass_app
def stop(app: AppContext, as_json: bool) -> None:
    """Stop the local server."""
    cluster = _cluster(app)
    was_running = cluster.stop()
    if as_json:
        emit_json({"stopped": was_running, "directory": str(cluster.directory)})
        return
    console.print("stopped" if was_running else "not running")


@server.command()
@json_option
@pass_app
def status(app: AppContext, as_json: bool) -> None:
    """Show whether the local server runs, where, and which version.

    Exits with 1 when it is not running.
    """
    cluster = _cluster(app)
    report = cluster.status()
    if as_json:
        emit_json(report)
    else:
        state = ("running", "green") if report.running else ("stopped", "yellow")
        console.print(styled("server:   ", state))
        console.print(f"version:  PostgreSQL {report.version} ({report.bin_dir})")
        console.print(f"data:     {report.directory}")
        if report.running:
            console.print(f"pid:      {report.pid}")
            console.print(f"url:      {cluster.url(app.project.database_name)}")
        console.print(f"log:      {report.log_file}")
    if not report.running:
        sys.exit(1)


@server.command()
@pass_app
def url(app: AppContext) -> None:
    """Print the URL of the project's database (starting the server if needed)."""
    cluster = _cluster(app)
    cluster.start()
    click.echo(cluster.ensure_database(app.project.database_name))


@server.command(context_settings={"ignore_unknown_options": True})
@click.argument("psql_args", nargs=-1, type=click.UNPROCESSED)
@pass_app
def psql(app: AppContext, psql_args: tuple[str, ...]) -> None:
    """Open psql on the project's database (extra arguments go to psql)."""
    cluster = _cluster(app)
    cluster.start()
    target = cluster.ensure_database(app.project.database_name)
    program = str(cluster.binaries.path("psql"))
    sys.stdout.flush()
    os.execv(program, [program, target, *psql_args])
