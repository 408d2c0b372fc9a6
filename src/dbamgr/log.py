"""Logging setup, secret masking and the JSON error log.

As a library dbamgr is silent: each module logs to ``logging.getLogger(__name__)``
and installs no handler. The CLI calls :func:`setup_logging`. Everything that leaves
the process through a handler or the error log passes :func:`redact` first, so a
password in a database URL never reaches a terminal or a file.
"""

from __future__ import annotations

import json
import logging
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

MASK = "****"

# scheme://user:password@host  (the password may hold anything but "@" and space)
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)[^@\s]*@")
# Where an unquoted password ends in running text: at a space or the end, less
# the closing punctuation before it, which is the sentence's ("…?password=x: no
# route", "(url …?password=x)"). A password that itself ends in such a mark
# shows that one mark.
_TEXT_END = r"""["'),.:;\]]*(?:\s|$)"""
# password=secret or password='se cret' in a libpq keyword/value string
_KV_PASSWORD = re.compile(
    r"(?P<head>(?<![?&])\bpassword\s*=\s*)(?:'(?:[^'\\]|\\.)*'|\S+?(?="
    + _TEXT_END
    + "))",
    re.I,
)
# ?password=secret in a URL query string (which also ends at the next & or #)
_QUERY_PASSWORD = re.compile(
    r"(?P<head>[?&]password=)[^&#\s]*?(?=[&#]|" + _TEXT_END + ")", re.I
)


def redact(text: str) -> str:
    """Return *text* with every password in a database URL or DSN masked."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}@", text)
    text = _QUERY_PASSWORD.sub(lambda m: f"{m['head']}{MASK}", text)
    return _KV_PASSWORD.sub(lambda m: f"{m['head']}{MASK}", text)


def passwords_in(url: str) -> list[str]:
    """The passwords written in *url*: in its user info, a ``?password=``
    parameter or a ``password=`` pair. Found by pattern, so also in a URL that
    does not parse, to mask them wherever a message repeats them."""
    found = [m[0][len(m["head"]) : -1] for m in _URL_PASSWORD.finditer(url)]
    for pattern in (_QUERY_PASSWORD, _KV_PASSWORD):
        found += [m[0][len(m["head"]) :].strip("'") for m in pattern.finditer(url)]
    return [secret for secret in found if secret]


def mask_url(url: str) -> str:
    """Return a database URL with its password, if any, replaced by ``****``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact(url)
    if parts.password is None:
        return redact(url)
    userinfo = f"{parts.username or ''}:{MASK}"
    host = parts.netloc.rpartition("@")[2]
    return redact(urlunsplit(parts._replace(netloc=f"{userinfo}@{host}")))


class RedactingFilter(logging.Filter):
    """A handler filter that masks secrets in the formatted message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True


class _CliFormatter(logging.Formatter):
    """``warning: message``, lowercase like the rest of dbamgr's output; with
    timestamps and logger names when debugging."""

    def __init__(self, debug: bool) -> None:
        super().__init__()
        self.debug = debug

    def format(self, record: logging.LogRecord) -> str:
        text = f"{record.levelname.lower()}: {record.getMessage()}"
        if self.debug:
            text = f"{self.formatTime(record, '%H:%M:%S')} {record.name} {text}"
        if record.exc_info and self.debug:
            # the messages of the exceptions in a traceback may hold a URL
            text += "\n" + redact(self.formatException(record.exc_info))
        return text


def setup_logging(verbosity: int = 0, *, debug: bool = False) -> None:
    """Install the CLI's log handler on the ``dbamgr`` logger.

    *verbosity* 0 shows warnings, 1 shows each change of state (INFO); *debug*
    shows every SQL statement and subprocess, and tracebacks. Messages go to
    standard error, so standard output stays clean for ``--json``.
    """
    level = logging.WARNING
    if debug:
        level = logging.DEBUG
    elif verbosity > 0:
        level = logging.INFO
    logger = logging.getLogger("dbamgr")
    for handler in list(logger.handlers):
        if getattr(handler, "_dbamgr", False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler()
    handler.setFormatter(_CliFormatter(debug))
    handler.addFilter(RedactingFilter())
    handler._dbamgr = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {str(k): _scrub(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub(v) for v in value]
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    return redact(str(value))


def write_error_record(
    log_dir: Path,
    *,
    command: str,
    error_type: str,
    message: str,
    migration: str | None = None,
    context: dict[str, Any] | None = None,
    hint: str | None = None,
) -> Path:
    """Append one JSON line describing a failure to ``log_dir/errors.jsonl``.

    Every string is redacted before it is written. Returns the file's path.
    """
    record = {
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "command": command,
        "migration": migration,
        "error_type": error_type,
        "message": message,
        "context": context or {},
        "hint": hint,
    }
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / "errors.jsonl"
    line = json.dumps(_scrub(record), sort_keys=False, default=str) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
    return path
