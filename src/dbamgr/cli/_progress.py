"""Progress bars on standard error for the long backup operations."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from dbamgr.backup.progress import Progress as Step
from dbamgr.backup.progress import ProgressCallback
from dbamgr.cli._context import AppContext
from dbamgr.cli._output import err_console


@contextlib.contextmanager
def progress_bar(app: AppContext) -> Iterator[ProgressCallback | None]:
    """A callback drawing one bar per step, or None for JSON output and for
    output that is not a terminal."""
    if app.json or not err_console.is_terminal:
        yield None
        return
    bar = Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    )
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
