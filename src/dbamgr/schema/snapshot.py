"""A database's schema as a deterministic model keyed by names.

``Snapshot.objects`` maps an object kind (``tables``, ``views``, ``sequences``,
``functions``, ``types``, ``schemas``, ``extensions``) to qualified names, and
each name to its attributes. Tables and views hold their ``columns``,
``constraints``, ``indexes``, ``triggers`` and ``policies`` as nested mappings.
Codes from the catalogs are spelled out (``"unlogged"``, ``"foreign key"``), so
that a diff reads as plain English. Serialized with sorted keys, two databases
built by the same migrations on the same major version give byte-identical snapshots.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from dbamgr.errors import UsageError
from dbamgr.schema.catalog import snapshot_query

# 2: the server's major version only (server_major), owners, privileges with
# the owner as "(owner)"; files of format 1 are still read
FORMAT = 2
_READABLE_FORMATS = (1, 2)
# The settings a snapshot is read with, whatever the session's or the
# database's: pg_catalog alone in the search_path, so that every name outside
# it prints qualified (public.t, app.mood); and fixed styles for the values in
# defaults and partition bounds (times, intervals, floats, bytes, strings).
# Definitions then compare across databases.
_SETTINGS = {
    "search_path": "pg_catalog",
    "TimeZone": "UTC",
    "DateStyle": "ISO, MDY",
    "IntervalStyle": "postgres",
    "extra_float_digits": "1",
    "bytea_output": "hex",
    "standard_conforming_strings": "on",
}


def _set_configs(local: bool) -> str:
    calls = ", ".join(
        f"set_config('{name}', '{value}', {str(local).lower()})"
        for name, value in _SETTINGS.items()
    )
    return f"SELECT {calls}"


# for a session that reads snapshots only, with one generic plan
READER_SESSION = "SET plan_cache_mode = force_generic_plan; " + _set_configs(False)
# for one read within a transaction of its own
_READ_SETTINGS = _set_configs(True)
KINDS = (
    "schemas",
    "extensions",
    "types",
    "sequences",
    "tables",
    "views",
    "functions",
    "default_privileges",
)
NESTED = ("columns", "constraints", "indexes", "triggers", "policies")

# the catalogs of the objects a snapshot reads whole -> their class in
# Snapshot.catalog
CATALOG_CLASSES = {
    "pg_class": "rel",
    "pg_proc": "proc",
    "pg_type": "type",
    "pg_namespace": "schema",
    "pg_extension": "ext",
    "pg_default_acl": "defacl",
}
_PLAIN_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_$]*$")

_RELATION_KINDS = {
    "r": "table",
    "p": "partitioned table",
    "f": "foreign table",
    "v": "view",
    "m": "materialized view",
}
_PERSISTENCE = {"p": "permanent", "u": "unlogged", "t": "temporary"}
_REPLICA_IDENTITY = {"d": "default", "n": "nothing", "f": "full", "i": "index"}
_DEFAULT_PRIVILEGE_OBJECTS = {
    "r": "tables",
    "S": "sequences",
    "f": "functions",
    "T": "types",
    "n": "schemas",
    "L": "large objects",
}
_CONSTRAINT_TYPES = {
    "p": "primary key",
    "f": "foreign key",
    "u": "unique",
    "c": "check",
    "x": "exclusion",
    "t": "constraint trigger",
    "n": "not null",
}
_FUNCTION_KINDS = {"f": "function", "p": "procedure", "a": "aggregate", "w": "window"}
_VOLATILITY = {"i": "immutable", "s": "stable", "v": "volatile"}
_PARALLEL = {"s": "safe", "r": "restricted", "u": "unsafe"}
_TYPE_KINDS = {"e": "enum", "d": "domain", "r": "range", "c": "composite"}
_IDENTITY = {"a": "always", "d": "by default"}
_GENERATED = {"s": "stored", "v": "virtual"}
_TRIGGER_STATE = {"O": "enabled", "D": "disabled", "R": "replica", "A": "always"}
_POLICY_COMMANDS = {
    "r": "SELECT",
    "a": "INSERT",
    "w": "UPDATE",
    "d": "DELETE",
    "*": "ALL",
}


def quote_name(name: str) -> str:
    """*name* as SQL would write it: bare if it can be, double-quoted if not."""
    if _PLAIN_IDENTIFIER.match(name):
        return name
    return '"' + name.replace('"', '""') + '"'


@functools.lru_cache(maxsize=65536)
def qualify(schema: str, name: str) -> str:
    """``schema.name``, each part quoted only where SQL would need it."""
    return f"{quote_name(schema)}.{quote_name(name)}"


_LAST_COLUMN = re.compile(r'\.(?:[a-z_][a-z0-9_$]*|"(?:[^"]|"")*")$')


def _column_table(column: str | None) -> str | None:
    """The table of a ``table.column`` name as a sequence's ``owned_by`` holds
    it (the column quoted where SQL needs it)."""
    if not column:
        return None
    found = _LAST_COLUMN.search(column)
    return column[: found.start()] if found else None


def split_qualified(text: str) -> tuple[str, str]:
    """The (schema, name) of a name written by :func:`qualify`."""
    parts: list[str] = []
    position = 0
    while position < len(text):
        if text[position] == '"':
            end = position + 1
            chars = []
            while True:
                if text[end] == '"':
                    if end + 1 < len(text) and text[end + 1] == '"':
                        chars.append('"')
                        end += 2
                        continue
                    break
                chars.append(text[end])
                end += 1
            parts.append("".join(chars))
            position = end + 2
        else:
            end = text.find(".", position)
            end = len(text) if end < 0 or len(parts) == 1 else end
            parts.append(text[position:end])
            position = end + 1
    if len(parts) != 2:
        raise ValueError(f"{text!r} is not a qualified name")
    return parts[0], parts[1]


@dataclass
class Snapshot:
    """The schema of one database (see the module's docstring)."""

    objects: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    # the server's major version (18): definitions print alike across its minor
    # releases, not always across majors
    server_major: int = 0
    # catalog class ("rel", "proc", "type", "schema", "ext") -> oid -> (kind, name);
    # and relation name -> attnum -> column name. Not part of the model: they let
    # a SnapshotCache refresh only what changed.
    catalog: dict[str, dict[int, tuple[str, str]]] = field(
        default_factory=dict, repr=False, compare=False
    )
    attnums: dict[str, dict[int, str]] = field(
        default_factory=dict, repr=False, compare=False
    )
    # (catalog, oid) of a constraint, trigger, policy or default -> (class, oid)
    # of the object it belongs to
    parts: dict[tuple[str, int], tuple[str, int]] = field(
        default_factory=dict, repr=False, compare=False
    )
    # index oid -> (oid of its relation, qualified index name); the relation of
    # each composite type -> (the type's oid, its name); and the file node of each
    # table and materialized view (a new one means a rewrite)
    indexes: dict[int, tuple[int, str]] = field(
        default_factory=dict, repr=False, compare=False
    )
    composites: dict[int, tuple[int, str]] = field(
        default_factory=dict, repr=False, compare=False
    )
    filenodes: dict[int, int] = field(default_factory=dict, repr=False, compare=False)
    # (class, oid) of a relation or type -> the entries of parts, indexes and
    # composites that belong to it, as (index name, key): a refresh replaces one
    # owner's entries without walking through all of them
    owned: dict[tuple[str, int], set[tuple[str, Any]]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def owner_of(self, catalog: str, oid: int) -> tuple[str, int] | None:
        """The (catalog class, oid) of the object the snapshot reads whole that
        holds the catalog row (*catalog*, *oid*): a relation, function, type,
        schema or extension holds itself, a table its indexes, constraints,
        triggers, policies and defaults, a composite type its relation. None
        when the snapshot does not know the row."""
        cls = CATALOG_CLASSES.get(catalog)
        if cls is not None and oid in self.catalog.get(cls, {}):
            return cls, oid
        if catalog == "pg_class":
            if oid in self.indexes:
                return "rel", self.indexes[oid][0]
            if oid in self.composites:
                return "type", self.composites[oid][0]
        return self.parts.get((catalog, oid))

    def relation(self, oid: int) -> tuple[str, str | None, str | None] | None:
        """The relation *oid* if the snapshot holds it as a table, view,
        sequence or index: its qualified name, for an index the name of its
        table, and for a sequence owned by a column the name of that column's
        table."""
        relations = self.catalog.get("rel", {})
        known = relations.get(oid)
        if known is not None:
            kind, name = known
            owner = None
            if kind == "sequences":
                owned_by = self.objects.get("sequences", {}).get(name, {})
                owner = _column_table(owned_by.get("owned_by"))
            return name, None, owner
        index = self.indexes.get(oid)
        if index is None:
            return None
        table = relations.get(index[0])
        return index[1], None if table is None else table[1], None

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "server_major": self.server_major,
            "objects": {kind: self.objects.get(kind, {}) for kind in KINDS},
        }

    def to_json(self) -> str:
        """The snapshot as JSON with sorted keys: equal schemas, equal bytes."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any], origin: str = "snapshot") -> Snapshot:
        if not isinstance(data, dict) or data.get("format") not in _READABLE_FORMATS:
            raise UsageError(
                f"{origin} is not a dbamgr schema snapshot (format {FORMAT})",
                hint="make one with `dbamgr schema dump --json > FILE`",
            )
        objects = data.get("objects") or {}
        if data["format"] == 1:
            major = int(data.get("server_version") or 0) // 10000
        else:
            major = int(data.get("server_major") or 0)
        return cls({kind: dict(objects.get(kind) or {}) for kind in KINDS}, major)

    @classmethod
    def load(cls, path: Path) -> Snapshot:
        """Read a snapshot written by :meth:`to_json`."""
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise UsageError(
                f"cannot read the snapshot {path}: {exc}",
                hint="give a file written by `dbamgr schema dump --json`",
            ) from exc
        return cls.from_dict(data, str(path))

    def count(self, kind: str) -> int:
        return len(self.objects.get(kind, {}))


def _rows(raw: dict[str, Any], key: str) -> Iterable[dict[str, Any]]:
    return raw.get(key) or []


def _without(row: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in keys}


def build_snapshot(raw: dict[str, Any], server_major: int) -> Snapshot:
    """Turn the catalog query's JSON into a :class:`Snapshot`."""
    objects: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in KINDS}
    for row in _rows(raw, "schemas"):
        objects["schemas"][quote_name(row["name"])] = _without(row, "name", "oid")
    for row in _rows(raw, "extensions"):
        objects["extensions"][quote_name(row["name"])] = _without(row, "name", "oid")
    for row in _rows(raw, "default_privileges"):
        objects["default_privileges"][default_privileges_name(row)] = {
            "acl": row["acl"]
        }
    for row in _rows(raw, "sequences"):
        name = qualify(row["schema"], row["name"])
        objects["sequences"][name] = _without(row, "schema", "name", "oid")
    relations = _add_relations(objects, raw)
    snapshot = Snapshot(objects, server_major)
    snapshot.attnums = _add_parts(relations, raw)
    _add_functions(objects, raw)
    _add_types(objects, raw)
    snapshot.catalog = _catalog_index(raw)
    snapshot.parts = _part_index(raw)
    snapshot.indexes = {
        int(row["oid"]): (int(row["relation_oid"]), qualify(row["schema"], row["name"]))
        for row in _rows(raw, "indexes")
    }
    snapshot.composites = {
        int(row["relation_oid"]): (int(row["oid"]), qualify(row["schema"], row["name"]))
        for row in _rows(raw, "types")
        if row["relation_oid"] is not None
    }
    snapshot.filenodes = {
        int(row["oid"]): int(row["filenode"])
        for row in _rows(raw, "relations")
        if row["kind"] in ("r", "m")
    }
    snapshot.owned = _owned_index(snapshot)
    return snapshot


def _owned_index(snapshot: Snapshot) -> dict[tuple[str, int], set[tuple[str, Any]]]:
    owned: dict[tuple[str, int], set[tuple[str, Any]]] = {}
    for key, owner in snapshot.parts.items():
        owned.setdefault(owner, set()).add(("parts", key))
    for oid, (relation, _) in snapshot.indexes.items():
        owned.setdefault(("rel", relation), set()).add(("indexes", oid))
    for oid, (type_oid, _) in snapshot.composites.items():
        owned.setdefault(("type", type_oid), set()).add(("composites", oid))
    return owned


def _part_index(raw: dict[str, Any]) -> dict[tuple[str, int], tuple[str, int]]:
    return {
        (catalog, int(oid)): (owner_class, int(owner))
        for catalog, oid, owner_class, owner in _rows(raw, "parts")
    }


def _catalog_index(raw: dict[str, Any]) -> dict[str, dict[int, tuple[str, str]]]:
    index: dict[str, dict[int, tuple[str, str]]] = {
        "rel": {},
        "proc": {},
        "type": {},
        "schema": {},
        "ext": {},
        "defacl": {},
    }
    for row in _rows(raw, "relations"):
        kind = "views" if row["kind"] in ("v", "m") else "tables"
        index["rel"][int(row["oid"])] = (kind, qualify(row["schema"], row["name"]))
    for row in _rows(raw, "sequences"):
        index["rel"][int(row["oid"])] = (
            "sequences",
            qualify(row["schema"], row["name"]),
        )
    for row in _rows(raw, "functions"):
        name = f"{qualify(row['schema'], row['name'])}({row['identity']})"
        index["proc"][int(row["oid"])] = ("functions", name)
    for row in _rows(raw, "types"):
        index["type"][int(row["oid"])] = ("types", qualify(row["schema"], row["name"]))
    for row in _rows(raw, "schemas"):
        index["schema"][int(row["oid"])] = ("schemas", quote_name(row["name"]))
    for row in _rows(raw, "extensions"):
        index["ext"][int(row["oid"])] = ("extensions", quote_name(row["name"]))
    for row in _rows(raw, "default_privileges"):
        name = default_privileges_name(row)
        index["defacl"][int(row["oid"])] = ("default_privileges", name)
    return index


def default_privileges_name(row: dict[str, Any]) -> str:
    """``for role bob on tables in schema app``, as ALTER DEFAULT PRIVILEGES says
    it; without the role when it is the one that reads the snapshot."""
    words = []
    if row["role"] is not None:
        words.append(f"for role {quote_name(row['role'])}")
    objects = row["objects"]
    words.append(f"on {_DEFAULT_PRIVILEGE_OBJECTS.get(objects, objects)}")
    if row["schema"] is not None:
        words.append(f"in schema {quote_name(row['schema'])}")
    return " ".join(words)


def _add_relations(
    objects: dict[str, dict[str, dict[str, Any]]], raw: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    relations: dict[str, dict[str, Any]] = {}
    for row in _rows(raw, "relations"):
        name = qualify(row["schema"], row["name"])
        attributes = _without(
            row,
            "schema",
            "name",
            "kind",
            "persistence",
            "oid",
            "filenode",
            "replica_index",
        )
        attributes["kind"] = _RELATION_KINDS[row["kind"]]
        attributes["persistence"] = _PERSISTENCE[row["persistence"]]
        for nested in NESTED:
            attributes[nested] = {}
        if row["kind"] in ("v", "m"):
            unused = ["partition_key", "partition_of", "partition_bound"]
            unused += ["replica_identity", "server", "foreign_options"]
            if row["kind"] == "v":
                unused.append("populated")
            for key in unused:
                attributes.pop(key)
            objects["views"][name] = attributes
        else:
            for key in ("definition", "populated"):
                attributes.pop(key)
            identity = _REPLICA_IDENTITY[row["replica_identity"]]
            if row["replica_index"] is not None:
                identity += f" {quote_name(row['replica_index'])}"
            attributes["replica_identity"] = identity
            if row["kind"] != "f":
                for key in ("server", "foreign_options"):
                    attributes.pop(key)
            objects["tables"][name] = attributes
        relations[name] = attributes
    return relations


def _add_parts(
    relations: dict[str, dict[str, Any]], raw: dict[str, Any]
) -> dict[str, dict[int, str]]:
    """Columns, constraints, indexes, triggers and policies, into their relation;
    returns each relation's column names by attnum."""
    attnums: dict[str, dict[int, str]] = {}
    for nested in NESTED:
        for row in _rows(raw, nested):
            part = _without(
                row, "schema", "relation", "name", "attnum", "oid", "relation_oid"
            )
            if nested == "columns":
                part["identity"] = _IDENTITY.get(row["identity"] or "")
                if row["generated"]:
                    code, _, expression = row["generated"].partition(" ")
                    part["generated"] = f"{_GENERATED.get(code, code)}: {expression}"
            elif nested == "constraints":
                part["type"] = _CONSTRAINT_TYPES.get(row["type"], row["type"])
            elif nested == "triggers":
                part["enabled"] = _TRIGGER_STATE.get(row["enabled"], row["enabled"])
            elif nested == "policies":
                part["command"] = _POLICY_COMMANDS.get(row["command"], row["command"])
            relation = qualify(row["schema"], row["relation"])
            relations[relation][nested][row["name"]] = part
            if nested == "columns":
                attnums.setdefault(relation, {})[row["attnum"]] = row["name"]
    return attnums


def _add_functions(
    objects: dict[str, dict[str, dict[str, Any]]], raw: dict[str, Any]
) -> None:
    for row in _rows(raw, "functions"):
        name = f"{qualify(row['schema'], row['name'])}({row['identity']})"
        function = _without(row, "schema", "name", "identity", "oid")
        function["kind"] = _FUNCTION_KINDS[row["kind"]]
        function["volatility"] = _VOLATILITY[row["volatility"]]
        function["parallel"] = _PARALLEL[row["parallel"]]
        objects["functions"][name] = function


def _add_types(
    objects: dict[str, dict[str, dict[str, Any]]], raw: dict[str, Any]
) -> None:
    for row in _rows(raw, "types"):
        kind = _TYPE_KINDS[row["kind"]]
        attributes = {
            "kind": kind,
            "comment": row["comment"],
            "owner": row["owner"],
            "acl": row["acl"],
        }
        if kind == "enum":
            attributes["labels"] = row["labels"] or []
        elif kind == "domain":
            for key in ("base_type", "not_null", "default", "collation"):
                attributes[key] = row[key]
            attributes["checks"] = row["constraints"] or {}
        elif kind == "composite":
            attributes["attributes"] = row["attributes"] or []
        else:
            attributes["subtype"] = row["subtype"]
        objects["types"][qualify(row["schema"], row["name"])] = attributes


def prepare_reader(conn: psycopg.Connection[Any]) -> None:
    """Set up the session of *conn* for many snapshots: one generic plan for the
    catalog query, and the search_path snapshots are read with (see
    :func:`take_snapshot`). For a connection that reads snapshots only."""
    conn.execute(READER_SESSION)


def take_snapshot(
    conn: psycopg.Connection[Any],
    *,
    exclude_schemas: Iterable[str] = ("dbamgr",),
    only: dict[str, list[int]] | None = None,
    reader: bool = False,
) -> Snapshot:
    """Read the schema of the database *conn* is connected to, in one query.

    The schemas in *exclude_schemas* (dbamgr's own, by default) are left out.
    With *only* (a kind of :data:`~dbamgr.schema.catalog.ONLY_KINDS` -> oids), the
    snapshot holds just those objects (none of the kinds not named).

    Names print as seen from pg_catalog alone (every object outside it is
    qualified) and values in fixed styles (UTC, ISO dates), whatever the
    session's settings. With *reader* (a session set up by
    :func:`prepare_reader`) the prepared query runs as it is; else within a
    transaction (a savepoint inside one) that sets them for itself and is
    rolled back, which leaves the session as it was.
    """
    version = conn.info.server_version
    params: dict[str, Any] = {"excluded": list(exclude_schemas)}
    kinds = None
    if only is not None:
        wanted = {kind: list(oids) for kind, oids in only.items() if oids}
        if not wanted:
            return Snapshot({kind: {} for kind in KINDS}, version // 10000)
        kinds = frozenset(wanted)
        params |= wanted
    query = snapshot_query(version, kinds)
    with conn.cursor() as cur:
        if reader:
            # Prepared, with one generic plan: verify takes hundreds of snapshots
            # on one connection, and planning this query costs more than running it.
            cur.execute(query, params, prepare=True)
            row = cur.fetchone()
        else:
            with conn.transaction(force_rollback=True):
                cur.execute(_READ_SETTINGS)
                cur.execute(query, params)
                row = cur.fetchone()
    raw = row[0] if row and row[0] else {}
    return build_snapshot(raw, version // 10000)
