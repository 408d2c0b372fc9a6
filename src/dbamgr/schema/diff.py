"""Comparing two snapshots: object, attribute, before → after."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from typing import Any

from dbamgr.schema.snapshot import KINDS, NESTED, Snapshot

ADDED, REMOVED, CHANGED = "added", "removed", "changed"

_SINGULAR = {
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


@dataclass(frozen=True)
class Change:
    """One difference between two schemas."""

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
            return f"{sign} {self.subject} ({self.action})"
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
    return _SINGULAR.get(kind, kind)


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
                changes.append(Change(ADDED, label, name))
            elif new is None:
                changes.append(Change(REMOVED, label, name))
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
    part = _SINGULAR[nested]
    changes = []
    for part_name in sorted(set(old) | set(new)):
        was, now = old.get(part_name), new.get(part_name)
        if was == now:
            continue
        if was is None:
            changes.append(Change(ADDED, label, name, part, part_name))
        elif now is None:
            changes.append(Change(REMOVED, label, name, part, part_name))
        else:
            changes += _attribute_changes(label, name, (part, part_name), was, now)
    return changes
