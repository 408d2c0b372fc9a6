"""Running PostgreSQL's programs, as an unprivileged user when dbamgr runs as root.

PostgreSQL refuses to run as root. When dbamgr is root, the server's programs run as
a system user (``dbamgr`` unless configured otherwise), created on first use, and the
directories on the way to the binaries and the data are made searchable by it
(``o+x``, never readable), each change logged.
"""

from __future__ import annotations

import logging
import os
import pwd
import stat
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dbamgr.errors import ServerError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunAs:
    """The system user the server's programs run as."""

    name: str
    uid: int
    gid: int


def service_user(name: str) -> RunAs | None:
    """The user to run the server as: ``None`` (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        entry = _create_system_user(name)
    if entry.pw_uid == 0:
        raise ServerError(
            f'[server] run_as names "{name}", a superuser account',
            hint="PostgreSQL refuses to run as root: name an unprivileged user",
        )
    return RunAs(name, entry.pw_uid, entry.pw_gid)


def _create_system_user(name: str) -> pwd.struct_passwd:
    logger.info('creating system user "%s" to run PostgreSQL', name)
    command = [
        "useradd",
        "--system",
        "--no-create-home",
        "--shell",
        "/usr/sbin/nologin",
    ]
    try:
        subprocess.run([*command, name], check=True, capture_output=True, text=True)
    except FileNotFoundError as exc:
        raise ServerError(
            f'cannot create the system user "{name}": useradd is not installed',
            hint="create the user yourself, or set [server] run_as to an existing "
            "unprivileged user",
        ) from exc
    except subprocess.CalledProcessError as exc:
        # another dbamgr may have created it a moment ago
        try:
            return pwd.getpwnam(name)
        except KeyError:
            raise ServerError(
                f'cannot create the system user "{name}": {exc.stderr.strip()}',
                hint="create the user yourself, or set [server] run_as to an "
                "existing unprivileged user",
            ) from exc
    return pwd.getpwnam(name)


def grant_search(path: Path, user: RunAs) -> None:
    """Make every directory above *path* searchable by *user*.

    Only the search (execute) bit for others is added, and only where the user could
    not already pass; each change is logged at WARNING.
    """
    for directory in reversed(path.resolve().parents):
        info = directory.stat()
        if info.st_uid == user.uid and info.st_mode & stat.S_IXUSR:
            continue
        if info.st_gid == user.gid and info.st_mode & stat.S_IXGRP:
            continue
        if info.st_mode & stat.S_IXOTH:
            continue
        directory.chmod(info.st_mode | stat.S_IXOTH)
        logger.warning(
            'made %s searchable by others (o+x) so that the server user "%s" can '
            "reach %s",
            directory,
            user.name,
            path,
        )


def chown(path: Path, user: RunAs | None) -> None:
    """Give *path* to *user* (no-op when not running as root)."""
    if user is not None:
        os.chown(path, user.uid, user.gid)


def run(
    args: Sequence[str | Path],
    *,
    user: RunAs | None = None,
    timeout: float | None = None,
    env: dict[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL program and return its result, output captured.

    Output goes to temporary files, not pipes: ``pg_ctl start`` leaves a server
    running that would otherwise hold the pipes open and hang the read.
    """
    argv = [str(arg) for arg in args]
    logger.debug("running %s", " ".join(argv))
    child_env = dict(os.environ if env is None else env)
    child_env.setdefault("LC_ALL", "C.UTF-8")
    if user is not None:
        child_env["HOME"] = "/"
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        try:
            completed = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                text=True,
                timeout=timeout,
                env=child_env,
                check=False,
                cwd="/",
                user=user.uid if user else None,
                group=user.gid if user else None,
                extra_groups=[] if user else None,
            )
        except subprocess.TimeoutExpired as exc:
            raise ServerError(
                f"{Path(argv[0]).name} did not finish within {timeout:.0f}s",
                command=argv,
            ) from exc
        except OSError as exc:
            raise ServerError(f"cannot run {argv[0]}: {exc}", command=argv) from exc
        out.seek(0)
        err.seek(0)
        result = subprocess.CompletedProcess(
            argv, completed.returncode, out.read(), err.read()
        )
    if check and result.returncode != 0:
        raise ServerError(
            f"{Path(argv[0]).name} failed (exit {result.returncode}): "
            f"{(result.stderr or result.stdout).strip()}",
            command=argv,
            returncode=result.returncode,
        )
    return result
