"""Splitting SQL scripts into statements that keep their place in the file.

The real PostgreSQL parser (pglast) does the splitting, so semicolons inside
strings, dollar quotes, comments and ``BEGIN ATOMIC`` bodies are never mistaken for
statement ends. When the parser rejects the script (a syntax error, or syntax newer
than pglast knows), the splitter falls back to PostgreSQL's scanner, and the server
gets to judge each statement.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

_COMMENT_TOKENS = frozenset({"SQL_COMMENT", "C_COMMENT"})


@dataclass(frozen=True)
class Statement:
    """One SQL statement of a script, with its position in the script."""

    index: int
    text: str
    start: int
    line: int
    column: int


@dataclass(frozen=True)
class LineIndex:
    """Maps character offsets of a text to 1-based line and column numbers."""

    text: str
    _starts: list[int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        starts = [0]
        starts.extend(i + 1 for i, char in enumerate(self.text) if char == "\n")
        object.__setattr__(self, "_starts", starts)

    def locate(self, offset: int) -> tuple[int, int]:
        """The (line, column) of character *offset*, both counted from 1."""
        offset = max(0, min(offset, len(self.text)))
        line = bisect.bisect_right(self._starts, offset)
        return line, offset - self._starts[line - 1] + 1


def _scanner_slices(source: str) -> list[tuple[int, int]]:
    """(start, end) of each statement, found with the scanner alone.

    Statements end at top-level semicolons; inside ``BEGIN ATOMIC … END`` they do
    not (CASE … END is counted so that its END does not close the body).
    """
    from pglast import parser

    try:
        tokens = [t for t in parser.scan(source) if t.name not in _COMMENT_TOKENS]
    except parser.ParseError:
        # not even the scanner can read it (an unterminated quote): send it
        # whole, and let the server say where it is wrong
        stripped = source.strip()
        return [(source.index(stripped), len(source.rstrip()))] if stripped else []
    slices: list[tuple[int, int]] = []
    start: int | None = None
    atomic = cases = 0
    previous = ""
    for token in tokens:
        name = token.name
        if start is None:
            if name == "ASCII_59":
                continue
            start = token.start
        if name == "ATOMIC" and previous == "BEGIN_P":
            atomic += 1
        elif atomic and name == "CASE":
            cases += 1
        elif atomic and name == "END_P":
            if cases:
                cases -= 1
            else:
                atomic -= 1
        elif name == "ASCII_59" and not atomic:
            slices.append((start, token.start))
            start = None
        previous = name
    if start is not None:
        slices.append((start, tokens[-1].end + 1))
    return slices


def split_statements(source: str) -> list[Statement]:
    """Split *source* into statements, each with its offset, line and column."""
    from pglast import parser

    lines = LineIndex(source)
    try:
        pieces = [
            (s.start, s.stop)
            for s in parser.split(source, with_parser=True, only_slices=True)
        ]
    except parser.ParseError:
        pieces = _scanner_slices(source)
    statements = []
    for index, (start, stop) in enumerate(pieces):
        text = source[start:stop].rstrip()
        line, column = lines.locate(start)
        statements.append(Statement(index, text, start, line, column))
    return statements


def has_statements(source: str) -> bool:
    """Whether *source* holds anything but whitespace and comments.

    Only the comments before the first token need skipping, so this reads the
    text directly (block comments nest, as in PostgreSQL) instead of scanning it.
    """
    position, length = 0, len(source)
    while True:
        while position < length and source[position].isspace():
            position += 1
        if position == length:
            return False
        if source.startswith("--", position):
            newline = source.find("\n", position)
            if newline < 0:
                return False
            position = newline + 1
        elif source.startswith("/*", position):
            depth, position = 1, position + 2
            while depth and position < length:
                if source.startswith("/*", position):
                    depth, position = depth + 1, position + 2
                elif source.startswith("*/", position):
                    depth, position = depth - 1, position + 2
                else:
                    position += 1
            if depth:
                return False
        else:
            return True
