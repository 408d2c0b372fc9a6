"""Scratch databases to build a schema from migrations: for verify, drift, and
``migrations@VERSION`` sources.

A scratch database lives on the project's local server (started on demand), or on
a server given by URL where the user has CREATEDB; it is dropped afterwards.
Migrations that create roles (or other objects of the whole cluster) get a
throwaway cluster instead of the local server.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator
from typing import Any

import psycopg
from psycopg import conninfo, sql

from dbamgr.config import Project
from dbamgr.db import connect
from dbamgr.errors import DatabaseUnreachable, UsageError
from dbamgr.log import redact
from dbamgr.migrations.plan import UP, build_plan
from dbamgr.migrations.runner import EventHandler, Session
from dbamgr.migrations.source import Migration
from dbamgr.server import project_cluster, scratch_name, temporary_cluster
from dbamgr.sql.tree import touches_cluster
from dbamgr.target import Target

logger = logging.getLogger(__name__)


def touch_cluster(migrations: Iterable[Migration]) -> list[Migration]:
    """The migrations whose up or down creates, changes or drops objects of the
    whole cluster (roles, tablespaces, databases, server settings)."""
    return [
        migration
        for migration in migrations
        if any(
            script is not None and touches_cluster(script.text)
            for script in (migration.up, migration.down)
        )
    ]


@contextlib.contextmanager
def scratch_target(
    project: Project,
    server_url: str | None = None,
    *,
    prefix: str = "dbamgr_scratch",
    migrations: Iterable[Migration] = (),
) -> Iterator[Target]:
    """A new empty database for the duration of the block, as a :class:`Target`.

    On the project's local server, unless one of *migrations* (those that will
    run there) touches objects of the whole cluster: roles live beside the
    project's own databases, which may need them, and would outlive the scratch
    database. Those migrations get a throwaway cluster of their own, with the
    project's PostgreSQL and settings (about a second more).
    """
    name = scratch_name(prefix)
    if server_url is None:
        local = project_cluster(project)
        global_ = touch_cluster(migrations)
        if global_:
            logger.info(
                "%s touches roles or other objects of the whole cluster: "
                "using a throwaway cluster",
                global_[0],
            )
            with temporary_cluster(
                local.settings, binaries=local.binaries, run_as=local.run_as_name
            ) as cluster:
                yield Target("scratch", cluster.create_database(name), local=True)
            return
        local.start()
        url = local.create_database(name)
        try:
            yield Target("scratch", url, local=True)
        finally:
            local.drop_database(name)
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
        # the server answered: what is wrong is the role it was given
        raise UsageError(
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
