"""Progress bars on standard error for long operations (backups, verify)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from dbamgr.backup.progress import Progress as Step
from dbamgr.backup.progress import ProgressCallback
from dbamgr.cli._context import AppContext
from dbamgr.cli._output import get_console

# position (from 1), count, and the name of the item being worked on
CountCallback = Callable[[int, int, str], None]


def _bar(app: AppContext, *columns: ProgressColumn) -> Progress | None:
    """A bar of *columns* on standard error, gone once done; None for JSON
    output and when standard error is no terminal."""
    console = get_console(stderr=True)
    if app.json or not console.is_terminal:
        return None
    return Progress(
        *columns,
        console=console,
        transient=True,
        # what is printed meanwhile goes above the bar when both share the
        # terminal, and straight to its file when standard output is one
        redirect_stdout=sys.stdout.isatty(),
    )


@contextlib.contextmanager
def progress_bar(app: AppContext) -> Iterator[ProgressCallback | None]:
    """A callback drawing one bar per step, or None for JSON output and for
    output that is not a terminal."""
    bar = _bar(
        app,
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
    )
    if bar is None:
        yield None
        return
    tasks: dict[str, TaskID] = {}

    def show(step: Step) -> None:
        task = tasks.get(step.step)
        if task is None:
            for other in tasks.values():
                bar.update(other, total=1, completed=1)
            task = bar.add_task(step.step, total=step.total)
            tasks[step.step] = task
        bar.update(task, completed=step.done or 0, total=step.total)

    with bar:
        yield show


@contextlib.contextmanager
def count_bar(app: AppContext, label: str) -> Iterator[CountCallback | None]:
    """A bar that counts items (``position`` of ``count``) and names the
    current one, or None for JSON output and for output that is not a
    terminal."""
    bar = _bar(
        app,
        TextColumn(label, markup=False),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[item]}", markup=False),
    )
    if bar is None:
        yield None
        return
    task = bar.add_task(label, total=None, item="")

    def show(position: int, count: int, item: str) -> None:
        bar.update(task, completed=position - 1, total=count, item=item)

    with bar:
        yield show
