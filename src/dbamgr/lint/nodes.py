"""Reading the parse tree pglast gives as JSON: PostgreSQL's own node names.

The lint parses every statement with :func:`pglast.parser.parse_sql_json` and reads
the tree as plain dictionaries, which is several times faster than building
pglast's node objects. A node is ``{"NodeName": {fields}}``; fields at their
default value (false, 0, empty) are left out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pglast import parser

from dbamgr.sql.tree import walk

Node = dict[str, Any]

_TYPE_ALIASES = {
    "int": "int4",
    "integer": "int4",
    "smallint": "int2",
    "bigint": "int8",
    "real": "float4",
    "float": "float8",
    "double precision": "float8",
    "boolean": "bool",
    "character varying": "varchar",
    "character": "bpchar",
    "char": "bpchar",
    "decimal": "numeric",
    "timestamp without time zone": "timestamp",
    "timestamp with time zone": "timestamptz",
    "time without time zone": "time",
    "time with time zone": "timetz",
}


_DISPLAY = {
    "int2": "smallint",
    "int4": "integer",
    "int8": "bigint",
    "bpchar": "char",
    "float4": "real",
    "float8": "double precision",
    "bool": "boolean",
}


class ParseFailure(Exception):
    """pglast could not read a statement.

    *offset* is the character of the statement where the parser stopped, counted
    from 0; None when it stopped at the end of the text.
    """

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message)
        self.offset = offset


def parse(text: str) -> Node:
    """The statement node of *text* (one statement): ``{"AlterTableStmt": {...}}``."""
    try:
        tree = json.loads(parser.parse_sql_json(text))
    except parser.ParseError as exc:
        message, offset = exc.args if len(exc.args) == 2 else (str(exc), None)
        raise ParseFailure(str(message), offset) from None
    statements = tree.get("stmts") or []
    if not statements:
        return {}
    node: Node = statements[0].get("stmt", {})
    return node


def kind(node: Node) -> str:
    """The node's type name, e.g. ``AlterTableStmt``."""
    return next(iter(node), "")


def body(node: Node) -> Node:
    """The fields of a wrapped node."""
    return next(iter(node.values()), {}) if node else {}


def strings(items: list[Node] | None) -> list[str]:
    """The values of a list of ``String`` nodes."""
    return [body(item).get("sval", "") for item in items or [] if "String" in item]


def qualified(parts: list[str]) -> str:
    """Dotted name from its parts."""
    return ".".join(parts)


def range_name(rangevar: Node | None) -> str:
    """``schema.name`` or ``name`` of a RangeVar (unwrapped or wrapped)."""
    if not rangevar:
        return ""
    if "RangeVar" in rangevar:
        rangevar = rangevar["RangeVar"]
    name: str = rangevar.get("relname", "")
    schema = rangevar.get("schemaname")
    return f"{schema}.{name}" if schema else name


def object_names(objects: list[Node] | None) -> list[str]:
    """Names of the objects of a DropStmt (lists of strings, strings, type names)."""
    names = []
    for item in objects or []:
        if "List" in item:
            names.append(qualified(strings(item["List"].get("items"))))
        elif "String" in item:
            names.append(item["String"].get("sval", ""))
        elif "TypeName" in item:
            names.append(qualified(strings(item["TypeName"].get("names"))))
        elif "ObjectWithArgs" in item:
            names.append(qualified(strings(item["ObjectWithArgs"].get("objname"))))
    return names


@dataclass(frozen=True)
class ColumnType:
    """A column type reduced to what the lint compares: name, modifiers, array."""

    name: str
    modifiers: tuple[int, ...] = ()
    array: bool = False

    def __str__(self) -> str:
        text = _DISPLAY.get(self.name, self.name)
        if self.modifiers:
            text += "(" + ",".join(str(m) for m in self.modifiers) + ")"
        return text + ("[]" if self.array else "")


def column_type(type_name: Node | None) -> ColumnType | None:
    """The :class:`ColumnType` of a TypeName node."""
    if not type_name:
        return None
    if "TypeName" in type_name:
        type_name = type_name["TypeName"]
    names = strings(type_name.get("names"))
    if not names:
        return None
    name = names[-1].lower()
    if names[0] == "pg_catalog":
        name = _TYPE_ALIASES.get(name, name)
    modifiers = []
    for mod in type_name.get("typmods") or []:
        const = mod.get("A_Const", {})
        if "ival" in const:
            modifiers.append(int(const["ival"].get("ival", 0)))
    return ColumnType(name, tuple(modifiers), bool(type_name.get("arrayBounds")))


def constraints(column_def: Node) -> list[Node]:
    """The Constraint bodies of a ColumnDef."""
    return [
        c["Constraint"]
        for c in column_def.get("constraints") or []
        if "Constraint" in c
    ]


def contype(constraint: Node) -> str:
    """``CHECK``, ``FOREIGN``, ``PRIMARY``, ``UNIQUE``, ``NOTNULL``, ``DEFAULT``…"""
    return str(constraint.get("contype", "")).removeprefix("CONSTR_")


def _last_names(expression: Any, node: str, field: str) -> list[str]:
    """The last name part of every *node* (its *field* list) in an expression."""
    found = []
    for item in walk(expression):
        value = item.get(node)
        if isinstance(value, dict):
            names = strings(value.get(field))
            if names:
                found.append(names[-1])
    return found


def function_names(expression: Any) -> list[str]:
    """The names of the functions an expression calls (last part, lowercase)."""
    return [name.lower() for name in _last_names(expression, "FuncCall", "funcname")]


def column_refs(expression: Any) -> list[str]:
    """The column names an expression refers to (last part)."""
    return _last_names(expression, "ColumnRef", "fields")


def not_null_check_column(expression: Node | None) -> str | None:
    """The column of a ``col IS NOT NULL`` expression, if it is one."""
    if not expression or "NullTest" not in expression:
        return None
    test = expression["NullTest"]
    if test.get("nulltesttype") != "IS_NOT_NULL":
        return None
    refs = column_refs(test.get("arg"))
    return refs[0] if len(refs) == 1 else None
