"""Opening connections: application names, short retries, readable failures."""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from dbamgr.errors import DatabaseUnreachable
from dbamgr.log import mask_url

logger = logging.getLogger(__name__)

# While a server starts or recovers it refuses connections for a moment.
_STARTUP_RETRIES = 20
_STARTUP_DELAY = 0.25


def application_name(purpose: str) -> str:
    """An application_name that tells a DBA who holds a connection and why."""
    name = f"dbamgr {purpose} ({socket.gethostname()}:{os.getpid()})"
    return name[:63]


def connect(
    url: str,
    *,
    purpose: str = "",
    autocommit: bool = True,
    connect_timeout: int = 10,
    **kwargs: Any,
) -> psycopg.Connection[Any]:
    """Connect to *url*; failures raise :class:`DatabaseUnreachable` (URL masked).

    Connections are in autocommit mode unless asked otherwise: dbamgr opens its
    transactions explicitly, so that what runs is what the dry run printed.
    """
    attempt = 0
    while True:
        try:
            conn = psycopg.connect(
                url,
                autocommit=autocommit,
                connect_timeout=connect_timeout,
                application_name=application_name(purpose or "api"),
                **kwargs,
            )
        except psycopg.OperationalError as exc:
            text = str(exc)
            starting = "starting up" in text or "shutting down" in text
            if starting and attempt < _STARTUP_RETRIES:
                attempt += 1
                time.sleep(_STARTUP_DELAY)
                continue
            raise DatabaseUnreachable(
                f"cannot connect to {mask_url(url)}: {_last_line(text)}",
                hint="check that the server is running and the URL, user and "
                "password are right",
                url=mask_url(url),
            ) from None
        logger.debug("connected to %s", mask_url(url))
        return conn


def _last_line(text: str) -> str:
    """libpq puts the reason on the last line of a connection failure."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else text


def is_connection_lost(exc: BaseException) -> bool:
    """Whether *exc* means the connection broke (as opposed to a SQL error)."""
    if isinstance(exc, (pg_errors.AdminShutdown, pg_errors.CrashShutdown)):
        return True
    if isinstance(exc, psycopg.OperationalError):
        sqlstate = getattr(exc, "sqlstate", None)
        return sqlstate is None or sqlstate.startswith("08")
    return isinstance(exc, psycopg.InterfaceError)


def server_version(conn: psycopg.Connection[Any]) -> int:
    """The server's version number, e.g. 180006."""
    return conn.info.server_version
