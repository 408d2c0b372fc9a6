"""Whether ``ALTER COLUMN … TYPE`` rewrites the table.

PostgreSQL skips the rewrite when the old values are valid, unchanged, under the
new type: a binary-coercible cast with no length check that could fail (or a
relaxed one). The table of such changes below follows the server's own rules
(``ATColumnChangeRequiresRewrite`` and the types' length-coercion support
functions); :mod:`tests` checks each against a real server.
"""

from __future__ import annotations

from dataclasses import dataclass

from dbamgr.lint.nodes import ColumnType

_TEXT_LIKE = frozenset({"text", "varchar"})
_PRECISION_TYPES = frozenset({"timestamp", "timestamptz", "time", "timetz", "interval"})


@dataclass(frozen=True)
class Verdict:
    """What a type change does: rewrite (True/False/None = cannot tell) and why."""

    rewrite: bool | None
    reason: str


def _widens(old: tuple[int, ...], new: tuple[int, ...]) -> bool:
    """A length or precision limit that stays or grows (none = unlimited)."""
    if not new:
        return True
    if not old:
        return False
    return new[0] >= old[0]


def judge(
    old: ColumnType | None,
    new: ColumnType,
    *,
    pg_version: int,
    timezone: str | None = None,
    using: bool = False,
) -> Verdict:
    """Judge a change of a column from *old* to *new*."""
    if old is None:
        return Verdict(None, "the column's current type is unknown")
    if using:
        return Verdict(True, "a USING expression computes every value again")
    if old.array != new.array:
        return Verdict(True, f"{old} and {new} are stored differently")
    if old == new:
        return Verdict(False, "the type does not change")
    a, b = old.name, new.name
    if a in _TEXT_LIKE and b in _TEXT_LIKE:
        limit_old = old.modifiers if a == "varchar" else ()
        limit_new = new.modifiers if b == "varchar" else ()
        if _widens(limit_old, limit_new):
            return Verdict(False, f"{old} -> {new} is binary-coercible")
        return Verdict(True, f"{old} -> {new} checks every value against a new limit")
    if a == b == "numeric":
        if not new.modifiers:
            return Verdict(False, f"{old} -> {new} removes the limit")
        if old.modifiers and len(new.modifiers) > 1 and len(old.modifiers) > 1:
            same_scale = old.modifiers[1] == new.modifiers[1]
            if same_scale and new.modifiers[0] >= old.modifiers[0]:
                return Verdict(False, f"{old} -> {new} raises the precision")
        return Verdict(True, f"{old} -> {new} changes the scale or lowers the limit")
    if a == b and a in ("varbit",):
        if _widens(old.modifiers, new.modifiers):
            return Verdict(False, f"{old} -> {new} raises the limit")
        return Verdict(True, f"{old} -> {new} lowers the limit")
    if a == b and a in _PRECISION_TYPES:
        if _widens(old.modifiers, new.modifiers):
            return Verdict(False, f"{old} -> {new} keeps or raises the precision")
        return Verdict(True, f"{old} -> {new} rounds every value")
    if (a, b) == ("cidr", "inet"):
        return Verdict(False, "cidr -> inet is binary-coercible")
    if (a, b) == ("timestamp", "timestamptz") and _widens(old.modifiers, new.modifiers):
        if pg_version < 12:
            return Verdict(True, "before PostgreSQL 12 this change rewrites the table")
        if timezone is None:
            return Verdict(
                True,
                "timestamp -> timestamptz rewrites unless the session's TimeZone "
                "is UTC",
            )
        if timezone.upper() in ("UTC", "ETC/UTC", "GMT", "ETC/GMT", "Z", "ZULU"):
            return Verdict(False, f"timestamp -> timestamptz with TimeZone {timezone}")
        return Verdict(True, f"timestamp -> timestamptz with TimeZone {timezone}")
    return Verdict(True, f"{old} -> {new} converts every value")
