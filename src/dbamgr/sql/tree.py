"""Walking the parse tree pglast gives as JSON, and what a script names in it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from pglast import parser


class ScriptSyntaxError(ValueError):
    """PostgreSQL's parser refused a script; *offset* is where, from 0."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


def walk(node: Any) -> Iterator[dict[str, Any]]:
    """Every dictionary inside *node*, depth first (the node itself included)."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def referenced_relations(source: str) -> set[tuple[str | None, str]]:
    """The (schema or None, name) of every table or view the statements of
    *source* read or write, leaving out the names of their common table
    expressions. Raises :class:`ScriptSyntaxError` when the script does not
    parse."""
    try:
        tree = json.loads(parser.parse_sql_json(source))
    except parser.ParseError as exc:
        message, offset = exc.args if len(exc.args) == 2 else (str(exc), 0)
        raise ScriptSyntaxError(str(message), int(offset)) from None
    names: set[tuple[str | None, str]] = set()
    ctes: set[str] = set()
    for node in walk(tree):
        # a RangeVar comes wrapped or bare; it is the only node with both
        if "relname" in node and "relpersistence" in node:
            names.add((node.get("schemaname"), node["relname"]))
        cte = node.get("CommonTableExpr")
        if cte is not None:
            ctes.add(cte.get("ctename", ""))
    return {(schema, name) for schema, name in names if schema or name not in ctes}


# statements on objects of the whole cluster rather than of one database
_CLUSTER_STATEMENTS = frozenset(
    {
        "CreateRoleStmt",
        "AlterRoleStmt",
        "AlterRoleSetStmt",
        "DropRoleStmt",
        "GrantRoleStmt",
        "CreateTableSpaceStmt",
        "DropTableSpaceStmt",
        "AlterTableSpaceOptionsStmt",
        "CreatedbStmt",
        "DropdbStmt",
        "AlterSystemStmt",
    }
)
_CLUSTER_RENAMES = frozenset({"OBJECT_ROLE", "OBJECT_TABLESPACE", "OBJECT_DATABASE"})
# the same inside a function body or DO block, which the parser keeps as text
_CLUSTER_WORDS = re.compile(
    r"\b(?:(?:CREATE|ALTER|DROP)\s+(?:ROLE|USER|GROUP|TABLESPACE|DATABASE)"
    r"|ALTER\s+SYSTEM)\b",
    re.I,
)


def touches_cluster(source: str) -> bool:
    """Whether the statements of *source* create, change or drop objects that
    belong to the whole cluster, not to one database: roles (and memberships),
    tablespaces, databases, server settings. Also true when a DO block or
    function body seems to (its text is not parsed), and when *source* does not
    parse."""
    if not _CLUSTER_WORDS.search(source) and "GRANT" not in source.upper():
        return False
    try:
        tree = json.loads(parser.parse_sql_json(source))
    except parser.ParseError:
        return True
    for node in walk(tree):
        for name, fields in node.items():
            if name in _CLUSTER_STATEMENTS:
                return True
            if (
                name == "RenameStmt"
                and isinstance(fields, dict)
                and fields.get("renameType") in _CLUSTER_RENAMES
            ):
                return True
            if name in ("DoStmt", "CreateFunctionStmt") and _CLUSTER_WORDS.search(
                json.dumps(fields)
            ):
                return True
    return False
