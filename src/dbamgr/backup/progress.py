"""Progress reports from long operations, and programs whose progress we read."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from dbamgr.backup.errors import BackupError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Progress:
    """One step of a long operation: *done* of *total* (units, or None)."""

    step: str
    done: float | None = None
    total: float | None = None


ProgressCallback = Callable[[Progress], None]


def report(
    callback: ProgressCallback | None,
    step: str,
    done: float | None = None,
    total: float | None = None,
) -> None:
    """Send a progress report if anyone listens."""
    if callback is not None:
        callback(Progress(step, done, total))


def connection_options(url: str) -> tuple[str, dict[str, str]]:
    """Split a connection string for a child program: the string without its
    password, and an environment carrying the password (PGPASSWORD), so that
    the password never appears in the process list or in messages."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(url)
    password = params.pop("password", None)
    env = dict(os.environ)
    if password is not None:
        env["PGPASSWORD"] = str(password)
    return make_conninfo("", **params), env


_KB_PROGRESS = re.compile(rb"(\d+)/(\d+) kB")


def run_program(
    args: Sequence[str | Path],
    *,
    step: str,
    on_progress: ProgressCallback | None = None,
    env: dict[str, str] | None = None,
    user: tuple[int, int] | None = None,
    timeout: float | None = None,
) -> str:
    """Run a PostgreSQL client program, following its ``-P`` progress output
    ("123/456 kB"); return its standard output. A non-zero exit raises a
    :class:`BackupError` with the program's messages."""
    argv = [str(arg) for arg in args]
    logger.debug("running %s", " ".join(argv))
    child_env = dict(os.environ if env is None else env)
    child_env.setdefault("LC_ALL", "C.UTF-8")
    errors = bytearray()
    with tempfile.TemporaryFile() as out:
        try:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.PIPE,
                env=child_env,
                cwd="/",
                user=user[0] if user else None,
                group=user[1] if user else None,
                extra_groups=[] if user else None,
            )
        except OSError as exc:
            raise BackupError(f"cannot run {argv[0]}: {exc}", command=argv) from exc
        stderr = process.stderr
        assert stderr is not None
        try:
            while chunk := os.read(stderr.fileno(), 65536):
                errors += chunk
                for match in _KB_PROGRESS.finditer(chunk):
                    report(on_progress, step, int(match[1]), int(match[2]))
            code = process.wait(timeout=timeout)
        except BaseException:
            process.kill()
            process.wait()
            raise
        out.seek(0)
        output = out.read().decode(errors="replace")
    if code != 0:
        lines = [
            line.strip()
            for line in re.split(r"[\r\n]+", errors.decode(errors="replace"))
            if line.strip() and not _KB_PROGRESS.search(line.encode())
        ]
        raise BackupError(
            f"{Path(argv[0]).name} failed (exit {code}): " + " ".join(lines[-5:]),
            command=argv,
            returncode=code,
        )
    return output
