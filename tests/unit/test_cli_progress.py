"""Progress bars draw on a terminal, and stay away from pipes and JSON."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from dbamgr.backup.progress import Progress
from dbamgr.cli import _progress
from dbamgr.cli._context import AppContext


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """Standard error as a terminal 100 columns wide, written to a buffer."""
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100)
    monkeypatch.setattr(_progress, "get_console", lambda stderr: console)
    return screen


def test_the_count_bar_draws_the_position_and_the_item(terminal: io.StringIO) -> None:
    with _progress.count_bar(AppContext(), "verify") as bar:
        assert bar is not None
        bar(2, 3, "20261204_add_index")
    assert "verify" in terminal.getvalue()
    assert "20261204_add_index" in terminal.getvalue()


def test_the_step_bar_draws_each_step(terminal: io.StringIO) -> None:
    with _progress.progress_bar(AppContext()) as show:
        assert show is not None
        show(Progress("base backup", 10, 100))
    assert "base backup" in terminal.getvalue()


def test_no_bar_for_json_output(terminal: io.StringIO) -> None:
    with _progress.count_bar(AppContext(json=True), "verify") as bar:
        assert bar is None
    assert terminal.getvalue() == ""


def test_no_bar_when_standard_error_is_no_terminal() -> None:
    with _progress.count_bar(AppContext(), "verify") as bar:
        assert bar is None
