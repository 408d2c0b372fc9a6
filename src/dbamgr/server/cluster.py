"""A PostgreSQL cluster that dbamgr runs in a directory of its own.

The directory holds ``data/`` (the data directory), ``server.log`` and
``cluster.json`` (what dbamgr knows of it). The server listens on 127.0.0.1 only,
on a port of its own, with trust authentication for local connections: it is a
development and scratch server, not a production one. Several clusters can run at
once; starting, stopping and removing one are idempotent and safe to call from
several processes at the same time (a file lock serializes them).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from dbamgr.db.connect import connect
from dbamgr.errors import ServerError
from dbamgr.server.binaries import PgBinaries, find_binaries
from dbamgr.server.process import RunAs, chown, grant_search, run, service_user

logger = logging.getLogger(__name__)

SUPERUSER = "postgres"
HOST = "127.0.0.1"
_INCLUDE_FILE = "dbamgr.conf"
_START_ATTEMPTS = 3

SettingValue = str | int | float | bool


@dataclass(frozen=True)
class ClusterStatus:
    """What ``dbamgr server status`` reports."""

    directory: str
    initialized: bool
    running: bool
    pid: int | None
    port: int | None
    version: str
    bin_dir: str
    url: str | None
    log_file: str


def _quote_setting(value: SettingValue) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (int, float)):
        return str(value)
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LocalCluster:
    """A local PostgreSQL cluster in *directory*.

    *settings* are written to the server's configuration at each start (e.g.
    ``{"wal_level": "replica", "archive_mode": "on"}``). *port* 0 picks a free
    port and keeps it while it stays free. When dbamgr runs as root, the server
    runs as the system user *run_as*.
    """

    def __init__(
        self,
        directory: Path,
        *,
        binaries: PgBinaries | None = None,
        port: int = 0,
        settings: Mapping[str, SettingValue] | None = None,
        run_as: str = "dbamgr",
        durable: bool = True,
        data_dir: Path | None = None,
    ) -> None:
        self.directory = Path(directory).absolute()
        self._data_dir = Path(data_dir).absolute() if data_dir is not None else None
        self._binaries = binaries
        self.requested_port = port
        self.settings: dict[str, SettingValue] = dict(settings or {})
        self.run_as_name = run_as
        self.durable = durable
        self._user: RunAs | None = None
        self._user_resolved = False

    # -- layout ---------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        """PGDATA: ``directory/data`` unless another was given (restored copies)."""
        if self._data_dir is not None:
            return self._data_dir
        return self.directory / "data"

    @property
    def log_file(self) -> Path:
        return self.directory / "server.log"

    @property
    def _state_file(self) -> Path:
        return self.directory / "cluster.json"

    @property
    def binaries(self) -> PgBinaries:
        if self._binaries is None:
            self._binaries = find_binaries()
        return self._binaries

    @property
    def user(self) -> RunAs | None:
        if not self._user_resolved:
            self._user = service_user(self.run_as_name)
            self._user_resolved = True
        return self._user

    @property
    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").is_file()

    @property
    def port(self) -> int | None:
        """The port the server listens on (or will listen on), if known."""
        info = self._postmaster_info()
        if info is not None:
            return info[1]
        state = self._read_state()
        port = state.get("port")
        return int(port) if port else None

    def url(self, database: str = "postgres") -> str:
        """The connection URL of *database* on this cluster (the server must run)."""
        port = self.port
        if port is None:
            raise ServerError(
                f"the server in {self.directory} has no port yet: start it"
            )
        return f"postgresql://{SUPERUSER}@{HOST}:{port}/{database}"

    # -- state ----------------------------------------------------------------

    def _read_state(self) -> dict[str, Any]:
        try:
            data = json.loads(self._state_file.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _write_state(self, **values: Any) -> None:
        state = self._read_state() | values
        tmp = self._state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        tmp.replace(self._state_file)

    def _postmaster_info(self) -> tuple[int, int, str] | None:
        """(pid, port, status) of a running postmaster, or None."""
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return None
        try:
            pid, port = int(lines[0]), int(lines[3])
        except (IndexError, ValueError):
            return None
        if not _pid_alive(pid):
            return None
        status = lines[7].strip() if len(lines) > 7 else ""
        return pid, port, status

    @property
    def running(self) -> bool:
        info = self._postmaster_info()
        return info is not None and info[2] == "ready"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True)
        with (self.directory / ".lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # -- lifecycle ------------------------------------------------------------

    def _prepare_directories(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        user = self.user
        if user is None:
            return
        self.directory.chmod(self.directory.stat().st_mode | 0o711)
        grant_search(self.directory, user)
        if self._data_dir is not None:
            grant_search(self._data_dir, user)
        grant_search(self.binaries.bin_dir, user)
        # the programs load their libraries from ../lib and ../share
        for sibling in ("lib", "share"):
            target = self.binaries.bin_dir.parent / sibling
            if target.is_dir():
                grant_search(target / "x", user)

    def initialize(self) -> None:
        """Create the data directory with initdb, unless it exists."""
        with self._locked():
            self._initialize()

    def _initialize(self) -> None:
        if self.initialized:
            self._check_version()
            return
        self._prepare_directories()
        if self.data_dir.exists():
            if any(self.data_dir.iterdir()):
                raise ServerError(
                    f"{self.data_dir} exists but holds no PostgreSQL data directory",
                    hint="move it away or remove it, then start again",
                )
        else:
            self.data_dir.mkdir(mode=0o700)
        chown(self.data_dir, self.user)
        binaries = self.binaries
        args: list[str | Path] = [
            binaries.path("initdb"),
            "-D",
            self.data_dir,
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
        ]
        if binaries.major >= 14:
            args.append("--no-instructions")
        if not self.durable:
            args.append("--no-sync")
        logger.info(
            "initializing a PostgreSQL %s cluster in %s",
            binaries.version,
            self.data_dir,
        )
        run(args, user=self.user, timeout=300)
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write(f"\n# added by dbamgr\ninclude_if_exists = '{_INCLUDE_FILE}'\n")
        self._write_state(bin_dir=str(binaries.bin_dir), version=binaries.version)

    def adopt(self) -> None:
        """Make a data directory made elsewhere (a restored backup) read the
        settings file dbamgr writes at each start."""
        conf = self.data_dir / "postgresql.conf"
        text = conf.read_text() if conf.exists() else ""
        if _INCLUDE_FILE not in text:
            with conf.open("a") as handle:
                handle.write(
                    f"\n# added by dbamgr\ninclude_if_exists = '{_INCLUDE_FILE}'\n"
                )
            chown(conf, self.user)

    def _check_version(self) -> None:
        made_by = (self.data_dir / "PG_VERSION").read_text().strip()
        if made_by != str(self.binaries.major):
            raise ServerError(
                f"{self.data_dir} was created by PostgreSQL {made_by}, but the "
                f"configured programs are PostgreSQL {self.binaries.version}",
                hint=f"set [server] bin_dir to a PostgreSQL {made_by} installation, or "
                "remove the directory to start afresh (its data is lost)",
            )

    def _write_settings(self, port: int) -> None:
        values: dict[str, SettingValue] = {
            "listen_addresses": HOST,
            "port": port,
            "unix_socket_directories": "",
        }
        if not self.durable:
            values |= {
                "fsync": False,
                "synchronous_commit": False,
                "full_page_writes": False,
            }
        values |= self.settings
        lines = ["# written by dbamgr at each start; edit [server] settings instead"]
        lines += [f"{key} = {_quote_setting(value)}" for key, value in values.items()]
        path = self.data_dir / _INCLUDE_FILE
        path.write_text("\n".join(lines) + "\n")
        chown(path, self.user)

    def _choose_port(self, avoid: set[int]) -> int:
        if self.requested_port:
            return self.requested_port
        previous = self._read_state().get("port")
        if (
            isinstance(previous, int)
            and previous not in avoid
            and _port_is_free(previous)
        ):
            return previous
        port = free_port()
        while port in avoid:
            port = free_port()
        return port

    def start(self, timeout: float = 60) -> None:
        """Start the server (initializing it first if needed); no-op if it runs."""
        with self._locked():
            if self.running:
                return
            self._initialize()
            self._prepare_directories()
            if not self.log_file.exists():
                self.log_file.touch(mode=0o600)
            chown(self.log_file, self.user)
            tried: set[int] = set()
            for attempt in range(1, _START_ATTEMPTS + 1):
                port = self._choose_port(tried)
                tried.add(port)
                self._write_settings(port)
                try:
                    self._pg_ctl_start(timeout)
                except ServerError as exc:
                    log_tail = self.read_log_tail()
                    port_taken = (
                        "could not bind" in log_tail and not self.requested_port
                    )
                    if port_taken and attempt < _START_ATTEMPTS:
                        logger.warning("port %d was taken; trying another", port)
                        continue
                    raise ServerError(
                        f"the server in {self.directory} did not start",
                        hint=f"its log ({self.log_file}) ends with:\n{log_tail}",
                        directory=str(self.directory),
                    ) from exc
                self._write_state(port=port, bin_dir=str(self.binaries.bin_dir))
                logger.info(
                    "started PostgreSQL %s on port %d", self.binaries.version, port
                )
                return

    def _pg_ctl_start(self, timeout: float) -> None:
        run(
            [
                self.binaries.path("pg_ctl"),
                "start",
                "-D",
                self.data_dir,
                "-l",
                self.log_file,
                "-w",
                "-t",
                str(int(timeout)),
                "-s",
            ],
            user=self.user,
            timeout=timeout + 10,
        )

    def stop(self, mode: str = "fast", timeout: float = 60) -> bool:
        """Stop the server; returns whether it was running."""
        with self._locked():
            if self._postmaster_info() is None:
                return False
            logger.info("stopping the server in %s", self.directory)
            result = run(
                [
                    self.binaries.path("pg_ctl"),
                    "stop",
                    "-D",
                    self.data_dir,
                    "-m",
                    mode,
                    "-w",
                    "-t",
                    str(int(timeout)),
                    "-s",
                ],
                user=self.user,
                timeout=timeout + 10,
                check=False,
            )
            if result.returncode != 0 and self._postmaster_info() is not None:
                raise ServerError(
                    f"the server in {self.directory} did not stop: "
                    + result.stderr.strip()
                )
            return True

    def remove(self) -> None:
        """Stop the server at once and delete its directory."""
        if self.initialized:
            self.stop(mode="immediate")
        shutil.rmtree(self.directory, ignore_errors=True)

    def read_log_tail(self, lines: int = 20) -> str:
        """The last lines of the server log."""
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def status(self) -> ClusterStatus:
        """Report whether the server runs, where, and which version."""
        info = self._postmaster_info()
        running = info is not None and info[2] == "ready"
        state = self._read_state()
        return ClusterStatus(
            directory=str(self.directory),
            initialized=self.initialized,
            running=running,
            pid=info[0] if info else None,
            port=info[1] if info else state.get("port"),
            version=str(state.get("version") or self.binaries.version),
            bin_dir=str(state.get("bin_dir") or self.binaries.bin_dir),
            url=self.url() if running else None,
            log_file=str(self.log_file),
        )

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- databases ------------------------------------------------------------

    def connect(
        self, database: str = "postgres", **kwargs: Any
    ) -> psycopg.Connection[Any]:
        """A connection to *database* as the superuser, in autocommit mode."""
        return connect(self.url(database), purpose="server", **kwargs)

    def database_exists(self, name: str) -> bool:
        with self.connect() as conn:
            row = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [name]
            ).fetchone()
        return row is not None

    def create_database(self, name: str, *, template: str | None = None) -> str:
        """Create database *name* (cloned from *template* if given); return its URL."""
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            query += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
            if self.binaries.major >= 15:
                # For small templates a file copy is several times faster than
                # WAL-logging every block.
                query += sql.SQL(" STRATEGY FILE_COPY")
        with self.connect() as conn:
            conn.execute(query)
        return self.url(name)

    def ensure_database(self, name: str) -> str:
        """Create database *name* unless it exists; return its URL."""
        try:
            if not self.database_exists(name):
                self.create_database(name)
        except psycopg.errors.DuplicateDatabase:
            pass
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop database *name*, closing its connections first."""
        query = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(name)
        )
        with self.connect() as conn:
            conn.execute(query)
