"""Comparing two snapshots: object, attribute, before → after."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from typing import Any

from dbamgr.schema.snapshot import KINDS, NESTED, Snapshot

ADDED, REMOVED, CHANGED = "added", "removed", "changed"

# the name of one object of a kind, or of one part of a table or view
SINGULAR = {
    "schemas": "schema",
    "extensions": "extension",
    "types": "type",
    "sequences": "sequence",
    "tables": "table",
    "views": "view",
    "functions": "function",
    "default_privileges": "default privileges",
    "columns": "column",
    "constraints": "constraint",
    "indexes": "index",
    "triggers": "trigger",
    "policies": "policy",
}
_SIGN = {ADDED: "+", REMOVED: "-", CHANGED: "~"}
# values longer than this are shown as a line diff under the change
_INLINE = 70
# the definition of an added or removed object is cut to this many characters
_SHORT = 100


@dataclass(frozen=True)
class Change:
    """One difference between two schemas.

    A change of one attribute holds its old value in ``before`` and its new one
    in ``after``; an added object or part holds all its attributes in ``after``,
    a removed one in ``before``.
    """

    action: str
    kind: str
    name: str
    part: str | None = None
    part_name: str | None = None
    attribute: str | None = None
    before: Any = None
    after: Any = None

    @property
    def subject(self) -> str:
        """What changed, e.g. ``table public.users: column email``."""
        text = f"{self.kind} {self.name}"
        if self.part is not None:
            text += f": {self.part} {self.part_name}"
        return text

    def describe(self) -> str:
        """One readable line (long values continue as a line diff below)."""
        sign = _SIGN[self.action]
        if self.action != CHANGED:
            line = f"{sign} {self.subject} ({self.action})"
            attributes = self.after if self.action == ADDED else self.before
            definition = _shorten(_definition(self.part, attributes))
            return f"{line}: {definition}" if definition else line
        before, after = _show(self.before), _show(self.after)
        head = f"{sign} {self.subject}: {self.attribute}"
        if "\n" in before + after or len(before) + len(after) > _INLINE:
            lines = difflib.unified_diff(
                before.splitlines(),
                after.splitlines(),
                "before",
                "after",
                lineterm="",
                n=1,
            )
            body = "\n".join(f"    {line}" for line in list(lines)[2:])
            return f"{head}:\n{body}"
        return f"{head}: {before} → {after}"


def describe_column(column: dict[str, Any]) -> str:
    """A column's type and what constrains it: ``integer not null default 0``."""
    text = str(column.get("type"))
    if column.get("not_null"):
        text += " not null"
    if column.get("identity"):
        text += f" identity {column['identity']}"
    if column.get("generated"):
        text += f" generated {column['generated']}"
    if column.get("default") is not None:
        text += f" default {column['default']}"
    return text


def _definition(part: str | None, attributes: Any) -> str:
    """What an added or removed object or *part* is, in short: an index's,
    constraint's or trigger's definition, a column's type, a table's columns, a
    view's query, a function's result and language."""
    if not isinstance(attributes, dict):
        return ""
    if part == "column":
        return describe_column(attributes)
    if part == "policy":
        clauses = [str(attributes.get("command") or "")]
        if attributes.get("using"):
            clauses.append(f"USING ({attributes['using']})")
        if attributes.get("check"):
            clauses.append(f"WITH CHECK ({attributes['check']})")
        return " ".join(clauses)
    if part is not None or attributes.get("definition"):
        return str(attributes.get("definition") or "")
    return _object_definition(attributes)


def _object_definition(attributes: dict[str, Any]) -> str:
    columns = attributes.get("columns")
    if isinstance(columns, dict):
        ordered = sorted(columns.items(), key=lambda item: item[1].get("position", 0))
        listed = ", ".join(f"{name} {describe_column(c)}" for name, c in ordered)
        return f"({listed})"
    if "result" in attributes:
        returns = attributes.get("result")
        facts = [f"returns {returns}"] if returns else []
        facts += [f"language {attributes.get('language')}"]
        if attributes.get("volatility"):
            facts.append(str(attributes["volatility"]))
        return ", ".join(facts)
    if "increment" in attributes:
        return f"{attributes.get('type')}, increment {attributes.get('increment')}"
    if "version" in attributes:
        return f"version {attributes['version']}"
    for key in ("labels", "attributes"):
        if isinstance(attributes.get(key), list):
            return ", ".join(str(item) for item in attributes[key])
    for key in ("base_type", "subtype"):
        if attributes.get(key):
            return str(attributes[key])
    if list(attributes) == ["acl"] and attributes["acl"]:
        # default privileges: what new objects will grant
        return "grants " + ", ".join(str(entry) for entry in attributes["acl"])
    return ""


def _shorten(text: str) -> str:
    """*text* on one line, cut to :data:`_SHORT` characters."""
    line = " ".join(text.split())
    return line if len(line) <= _SHORT else line[: _SHORT - 1] + "…"


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)


@dataclass
class SchemaDiff:
    """Every difference from a *before* schema to an *after* one."""

    changes: list[Change] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.changes)

    def __len__(self) -> int:
        return len(self.changes)

    def render(self) -> str:
        return "\n".join(change.describe() for change in self.changes)


def _label(kind: str, attributes: dict[str, Any] | None) -> str:
    if attributes is not None and kind in ("tables", "views", "functions", "types"):
        own = attributes.get("kind")
        if isinstance(own, str):
            return own
    return SINGULAR.get(kind, kind)


def diff_snapshots(before: Snapshot, after: Snapshot) -> SchemaDiff:
    """What changed from *before* to *after*, object by object, in a stable order."""
    changes: list[Change] = []
    for kind in KINDS:
        old_objects = before.objects.get(kind, {})
        new_objects = after.objects.get(kind, {})
        if old_objects == new_objects:
            # verify's snapshots share the objects a run did not touch, so this
            # comparison is mostly of identical references
            continue
        for name in sorted(_differing(old_objects, new_objects)):
            old, new = old_objects.get(name), new_objects.get(name)
            label = _label(kind, new if new is not None else old)
            if old is None:
                changes.append(Change(ADDED, label, name, after=new))
            elif new is None:
                changes.append(Change(REMOVED, label, name, before=old))
            else:
                changes += _attribute_changes(label, name, None, old, new)
                for nested in NESTED:
                    changes += _nested_changes(
                        label, name, nested, old.get(nested), new.get(nested)
                    )
    return SchemaDiff(changes)


def _differing(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The names whose entries differ (added, removed or changed)."""
    names = list(old.keys() ^ new.keys())
    for name, entry in old.items():
        other = new.get(name)
        if other is not entry and other is not None and other != entry:
            names.append(name)
    return names


def _attribute_changes(
    label: str,
    name: str,
    part: tuple[str, str] | None,
    old: dict[str, Any],
    new: dict[str, Any],
) -> list[Change]:
    part_kind, part_name = part if part else (None, None)
    return [
        Change(
            CHANGED,
            label,
            name,
            part_kind,
            part_name,
            attribute,
            old.get(attribute),
            new.get(attribute),
        )
        for attribute in sorted(set(old) | set(new))
        if attribute not in NESTED and old.get(attribute) != new.get(attribute)
    ]


def _nested_changes(
    label: str,
    name: str,
    nested: str,
    old: dict[str, Any] | None,
    new: dict[str, Any] | None,
) -> list[Change]:
    old, new = old or {}, new or {}
    part = SINGULAR[nested]
    changes = []
    for part_name in sorted(set(old) | set(new)):
        was, now = old.get(part_name), new.get(part_name)
        if was == now:
            continue
        if was is None:
            changes.append(Change(ADDED, label, name, part, part_name, after=now))
        elif now is None:
            changes.append(Change(REMOVED, label, name, part, part_name, before=was))
        else:
            changes += _attribute_changes(label, name, (part, part_name), was, now)
    return changes
