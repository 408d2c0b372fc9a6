"""``-- dbamgr:NAME argument`` comments that tell dbamgr how to treat a script.

Directives are SQL line comments, so a file stays plain SQL that psql can run.

=================  =========================================================
no-transaction     first line of a file: run it statement by statement,
                   outside a transaction (CREATE INDEX CONCURRENTLY…)
irreversible R     in an up file: it has no down, for reason R
data-loss R        in an up or down file: it removes data on purpose
approve data-loss  in a file: its data-loss statements are approved
ignore RULE R      above a statement: silence lint rule RULE, for reason R
=================  =========================================================
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

KNOWN = ("no-transaction", "irreversible", "data-loss", "approve", "ignore")
_DIRECTIVE = re.compile(r"^--\s*dbamgr:(?P<name>[A-Za-z_-]*)(?P<arg>.*)$")


@dataclass(frozen=True)
class Directive:
    """One ``-- dbamgr:`` comment."""

    name: str
    argument: str
    line: int
    offset: int

    @property
    def known(self) -> bool:
        return self.name in KNOWN

    def suggestion(self) -> str | None:
        """The known directive this one was probably meant to be."""
        close = difflib.get_close_matches(self.name, KNOWN, n=1, cutoff=0.6)
        return close[0] if close else None


def _comments(source: str) -> list[tuple[int, str]]:
    """(offset, text) of every line comment in *source*."""
    from pglast import parser

    try:
        tokens = parser.scan(source)
    except parser.ParseError:
        # unreadable SQL: fall back to comments that start a line
        found = []
        offset = 0
        for line in source.splitlines(keepends=True):
            stripped = line.lstrip()
            if stripped.startswith("--"):
                found.append((offset + len(line) - len(stripped), stripped.rstrip()))
            offset += len(line)
        return found
    return [
        (token.start, source[token.start : token.end + 1])
        for token in tokens
        if token.name == "SQL_COMMENT"
    ]


def find_directives(source: str) -> list[Directive]:
    """Every ``-- dbamgr:`` comment of *source*, in order, with its line number."""
    if "dbamgr:" not in source:
        return []
    directives = []
    for offset, text in _comments(source):
        match = _DIRECTIVE.match(text.strip())
        if match is None:
            continue
        line = source.count("\n", 0, offset) + 1
        directives.append(
            Directive(match["name"].lower(), match["arg"].strip(), line, offset)
        )
    return directives
