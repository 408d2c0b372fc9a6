"""Where rule modules register the statement kinds they analyse."""

from __future__ import annotations

from collections.abc import Callable

from dbamgr.lint.context import Context
from dbamgr.lint.nodes import Node

Analyzer = Callable[[Context, Node], None]

ANALYZERS: dict[str, list[Analyzer]] = {}


def analyzer(*kinds: str) -> Callable[[Analyzer], Analyzer]:
    """Register a function that analyses statements of the given node kinds."""

    def register(func: Analyzer) -> Analyzer:
        for kind in kinds:
            ANALYZERS.setdefault(kind, []).append(func)
        return func

    return register
