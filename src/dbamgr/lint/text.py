"""Working on a statement's text: spans of its parts, edits for alternatives.

The parser gives locations in bytes of UTF-8; the scanner and Python strings
count characters. :func:`char_offset` converts. Alternatives are built by editing
the author's own text, so that they keep its names, spacing and expressions.
"""

from __future__ import annotations

import functools

from pglast import parser

_TYPE_WORDS = frozenset({"varying", "with", "without", "time", "zone", "precision"})
_OPEN = {"ASCII_40": "ASCII_41", "ASCII_91": "ASCII_93"}


def char_offset(text: str, location: int) -> int:
    """The character offset in *text* of a parser location (a byte offset)."""
    if location < 0:
        return 0
    if text.isascii():
        return location
    return len(text.encode()[:location].decode("utf-8", "ignore"))


@functools.lru_cache(maxsize=64)
def _tokens(text: str) -> tuple[parser.Token, ...]:
    """The tokens of *text* without comments (cached: rules ask several times)."""
    try:
        tokens = parser.scan(text)
    except parser.ParseError:
        return ()
    return tuple(t for t in tokens if t.name not in ("SQL_COMMENT", "C_COMMENT"))


def tokens(text: str) -> tuple[parser.Token, ...]:
    """The tokens of *text*, comments left out."""
    return _tokens(text)


def type_span(text: str, location: int) -> tuple[int, int] | None:
    """(start, end) of the type name written at parser *location* in *text*."""
    start = char_offset(text, location)
    tokens = _tokens(text)
    index = next((i for i, t in enumerate(tokens) if t.start >= start), None)
    if index is None:
        return None
    end = tokens[index].end + 1
    index += 1
    while index + 1 < len(tokens) and tokens[index].name == "ASCII_46":
        end = tokens[index + 1].end + 1
        index += 2
    while index < len(tokens) and _word(text, tokens[index]) in _TYPE_WORDS:
        end = tokens[index].end + 1
        index += 1
    while index < len(tokens) and tokens[index].name in _OPEN:
        closing = _matching(tokens, index)
        if closing is None:
            break
        end = tokens[closing].end + 1
        index = closing + 1
    return start, end


def _word(text: str, token: parser.Token) -> str:
    return text[token.start : token.end + 1].lower()


def _matching(tokens: tuple[parser.Token, ...], index: int) -> int | None:
    depth = 0
    for position in range(index, len(tokens)):
        name = tokens[position].name
        if name in _OPEN:
            depth += 1
        elif name in _OPEN.values():
            depth -= 1
            if depth == 0:
                return position
    return None


def replace(text: str, span: tuple[int, int], new: str) -> str:
    """*text* with the characters of *span* replaced by *new*."""
    return text[: span[0]] + new + text[span[1] :]


def command_spans(text: str, relation_location: int) -> list[tuple[int, int]]:
    """(start, end) of each command of an ALTER TABLE, after the table's name."""
    start = char_offset(text, relation_location)
    tokens = _tokens(text)
    index = next((i for i, t in enumerate(tokens) if t.start >= start), None)
    if index is None:
        return []
    index += 1
    while index + 1 < len(tokens) and tokens[index].name == "ASCII_46":
        index += 2
    if index < len(tokens) and tokens[index].name == "ASCII_42":
        index += 1
    spans: list[tuple[int, int]] = []
    depth = 0
    piece_start: int | None = None
    piece_end = 0
    for token in tokens[index:]:
        if token.name == "ASCII_59":
            break
        if piece_start is None:
            piece_start = token.start
        if token.name in ("ASCII_40", "ASCII_91"):
            depth += 1
        elif token.name in ("ASCII_41", "ASCII_93"):
            depth -= 1
        elif token.name == "ASCII_44" and depth == 0:
            spans.append((piece_start, token.start))
            piece_start = None
            continue
        piece_end = token.end + 1
    if piece_start is not None:
        spans.append((piece_start, piece_end))
    return [(a, b) for a, b in spans if b > a]


def insert_after_keyword(text: str, keyword: str, addition: str) -> str | None:
    """*text* with *addition* inserted after the first token named *keyword*."""
    for token in _tokens(text):
        if token.name == keyword:
            cut = token.end + 1
            return text[:cut] + " " + addition + text[cut:]
    return None


def where_span(text: str) -> tuple[int, int, bool]:
    """Where a statement's top-level WHERE condition is: (start, end, found).

    Without a WHERE, start and end are where one would go: before RETURNING, or at
    the end of the statement.
    """
    depth = 0
    start: int | None = None
    end = len(text.rstrip().rstrip(";"))
    for token in _tokens(text):
        if token.name in ("ASCII_40", "ASCII_91"):
            depth += 1
        elif token.name in ("ASCII_41", "ASCII_93"):
            depth -= 1
        elif depth == 0 and token.name == "WHERE" and start is None:
            start = token.end + 1
        elif depth == 0 and token.name == "RETURNING":
            end = token.start
            break
    if start is None:
        return end, end, False
    return start, end, True
