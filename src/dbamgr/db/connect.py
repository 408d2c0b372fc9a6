"""Opening connections: application names, short retries, readable failures."""

from __future__ import annotations

import logging
import os
import re
import socket
import time
from typing import Any

import psycopg
from psycopg import conninfo
from psycopg import errors as pg_errors

from dbamgr.errors import ConfigError, DatabaseUnreachable
from dbamgr.log import MASK, mask_url, passwords_in, redact

logger = logging.getLogger(__name__)

# While a server starts or recovers it refuses connections for a moment.
_STARTUP_RETRIES = 20
_STARTUP_DELAY = 0.25


def application_name(purpose: str) -> str:
    """An application_name that tells a DBA who holds a connection and why."""
    name = f"dbamgr {purpose} ({socket.gethostname()}:{os.getpid()})"
    return name[:63]


# libpq ends some messages by repeating the whole URI; the message names it already
_IN_URI = re.compile(r'\s+in URI: ".*"$')


def check_url(url: str, origin: str | None = None) -> None:
    """Raise :class:`ConfigError` (exit 2) when libpq cannot read *url* (a URL or
    ``key=value`` pairs), or its port is not a number.

    *origin* says where the URL came from (``DATABASE_URL``, ``--server``…), for
    the message; the URL is shown with its password masked, and so is any part
    of libpq's reason that repeats the password.
    """
    try:
        params = conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        reason = _IN_URI.sub("", _last_line(str(exc)))
        for secret in passwords_in(url):
            reason = reason.replace(secret, MASK)
        problem = redact(reason)
    else:
        ports = [port.strip() for port in str(params.get("port") or "").split(",")]
        bad = [port for port in ports if port and not _is_port(port)]
        if not bad:
            return
        problem = f'the port "{bad[0]}" is not a number from 1 to 65535'
    shown = mask_url(url)
    where = f"{origin}: " if origin else ""
    raise ConfigError(
        f'{where}"{shown}" is not a database URL ({problem})',
        hint=(f"fix {origin}: " if origin else "")
        + "write it as postgresql://USER@HOST:PORT/DATABASE (a password follows "
        "the user as USER:PASSWORD, its special characters percent-encoded)",
        url=shown,
        origin=origin,
    )


def _is_port(text: str) -> bool:
    return text.isdigit() and 0 < int(text) < 65536


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
    transactions explicitly, so that what runs is what the dry run printed. A
    URL libpq cannot read raises :class:`ConfigError` (see :func:`check_url`).
    """
    check_url(url)
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
