"""Scratch databases to build a schema from migrations: for verify, drift, and
``migrations@VERSION`` sources.

A scratch database lives on the project's local server (started on demand), or on
a server given by URL where the user has CREATEDB; it is dropped afterwards.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg import conninfo, sql

from dbamgr.config import Project
from dbamgr.db import connect
from dbamgr.errors import DatabaseUnreachable
from dbamgr.log import redact
from dbamgr.migrations.plan import UP, build_plan
from dbamgr.migrations.runner import EventHandler, Session
from dbamgr.migrations.source import Migration
from dbamgr.server import project_cluster, scratch_name
from dbamgr.target import Target

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def scratch_target(
    project: Project, server_url: str | None = None, *, prefix: str = "dbamgr_scratch"
) -> Iterator[Target]:
    """A new empty database for the duration of the block, as a :class:`Target`."""
    name = scratch_name(prefix)
    if server_url is None:
        cluster = project_cluster(project)
        cluster.start()
        url = cluster.create_database(name)
        try:
            yield Target("scratch", url, local=True)
        finally:
            cluster.drop_database(name)
        return

    with connect(server_url, purpose="scratch") as admin:
        _create(admin, name)
    url = conninfo.make_conninfo(server_url, dbname=name)
    try:
        yield Target("scratch", url)
    finally:
        try:
            with connect(server_url, purpose="scratch") as admin:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(name)
                    )
                )
        except (psycopg.Error, DatabaseUnreachable) as exc:
            logger.warning("could not drop the scratch database %s: %s", name, exc)


def _create(admin: psycopg.Connection[Any], name: str) -> None:
    try:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.errors.InsufficientPrivilege as exc:
        raise DatabaseUnreachable(
            f"cannot create a scratch database on that server: {exc}",
            hint="give the role CREATEDB, or leave out --server to use the local one",
        ) from exc


def apply_migrations(
    project: Project,
    target: Target,
    migrations: list[Migration],
    *,
    on_event: EventHandler | None = None,
) -> Session:
    """Apply *migrations* in order on *target*; return the open session.

    The caller closes the session (it holds the migration lock).
    """
    session = Session(
        target, project.config.migrations, purpose="scratch", on_event=on_event
    )
    session.lock_and_prepare()
    for position, migration in enumerate(migrations, start=1):
        plan = build_plan(
            migration,
            UP,
            tables=session.tables,
            timeouts=session.timeouts,
            applied_by=session.applied_by,
        )
        session.run(plan, position, len(migrations))
    logger.debug("applied %d migration(s) on %s", len(migrations), redact(target.url))
    return session
