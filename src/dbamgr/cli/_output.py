"""Rendering results: JSON for machines, rich for people."""

from __future__ import annotations

import json
import os
import sys
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from dbamgr.errors import ExitCode
from dbamgr.log import redact

if TYPE_CHECKING:
    from typing import TextIO

    from rich.console import Console
    from rich.text import Text


# the width of output that is not a terminal: wide enough never to wrap a line
UNLIMITED = 1_000_000

_consoles: dict[tuple[bool, int | None], Console] = {}


def output_width(stream: TextIO) -> int | None:
    """The width to lay output out in: COLUMNS if set; the terminal's (None, for
    rich to find) on a terminal; else :data:`UNLIMITED`, so that what goes to a
    pipe or a file keeps each line whole for grep."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    try:
        terminal = stream.isatty()
    except (AttributeError, ValueError):
        terminal = False
    return None if terminal else UNLIMITED


def get_console(stderr: bool = False) -> Console:
    """The rich Console for standard output (or error), created on first use.

    It prints text as it is: no markup, no emoji codes, no highlighting, so that
    a statement such as ``SELECT a[i]`` or a hint naming ``[environments.prod]``
    comes out intact. Styles are given with :func:`styled` or rich Text.
    """
    width = output_width(sys.stderr if stderr else sys.stdout)
    key = (stderr, width)
    if key not in _consoles:
        from rich.console import Console

        class _Console(Console):
            def on_broken_pipe(self) -> None:
                # whoever read the output went away (`dbamgr … | head`): stop
                # without a word, as a Unix tool that SIGPIPE ends, and with
                # its status (rich's own exits with 1, "a check failed")
                self.quiet = True
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
                raise SystemExit(ExitCode.PIPE_CLOSED)

        _consoles[key] = _Console(
            stderr=stderr, width=width, markup=False, emoji=False, highlight=False
        )
    return _consoles[key]


def styled(*parts: str | tuple[str, str]) -> Text:
    """A line of literal text whose parts given as (text, style) are styled:
    ``styled(("created", "green"), " ", path)``."""
    from rich.text import Text

    return Text.assemble(*parts)


class _LazyConsole:
    """Stands for a Console until one is needed: JSON output never imports rich."""

    def __init__(self, stderr: bool) -> None:
        self._stderr = stderr

    def __getattr__(self, name: str) -> Any:
        return getattr(get_console(self._stderr), name)


console: Console = _LazyConsole(stderr=False)  # type: ignore[assignment]
err_console: Console = _LazyConsole(stderr=True)  # type: ignore[assignment]


def to_jsonable(value: Any) -> Any:
    """Turn a result (dataclasses, dates, paths…) into JSON-ready values."""
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    fields = getattr(value, "__dataclass_fields__", None)
    if fields is not None and not isinstance(value, type):
        return {
            name: to_jsonable(getattr(value, name))
            for name in fields
            if not name.startswith("_")
        }
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Path):
        return str(value)
    return value


def emit_json(value: Any) -> None:
    """Print *value* as JSON on standard output."""
    click.echo(json.dumps(to_jsonable(value), indent=2, ensure_ascii=False))


def format_ms(milliseconds: float | None) -> str:
    if milliseconds is None:
        return ""
    if milliseconds < 1000:
        return f"{milliseconds:.0f} ms"
    return f"{milliseconds / 1000:.2f} s"


def format_time(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")
