"""``-- dbamgr:ignore`` and ``-- dbamgr:approve`` comments, and what they cover.

A directive covers the statement right below it (the first statement that starts
after the comment). ``-- dbamgr:data-loss <reason>`` anywhere in a file approves
every data-loss statement of that file.
"""

from __future__ import annotations

import bisect
import difflib
from collections.abc import Collection
from dataclasses import dataclass, field

from dbamgr.migrations.source import Script

DATA_LOSS_ARGUMENT = "data-loss"


@dataclass
class Ignore:
    """``-- dbamgr:ignore rule[,rule…] reason`` above one statement."""

    rules: tuple[str, ...]
    reason: str
    line: int
    statement: int | None
    used: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Approval:
    """An approval of data loss: for one statement, or the whole file (None)."""

    reason: str
    line: int
    statement: int | None


@dataclass
class Directives:
    """The lint directives of one script, and the malformed ones."""

    ignores: list[Ignore] = field(default_factory=list)
    approvals: list[Approval] = field(default_factory=list)
    problems: list[tuple[int, str]] = field(default_factory=list)

    def ignore_reason(self, statement: int, rule: str) -> str | None:
        """The reason an ignore gives for *rule* on *statement*, marking it used."""
        for ignore in self.ignores:
            if ignore.statement == statement and rule in ignore.rules:
                ignore.used.add(rule)
                return ignore.reason
        return None

    def approval(self, statement: int) -> Approval | None:
        """The approval that covers data loss in *statement*, if any."""
        for approval in self.approvals:
            if approval.statement is None or approval.statement == statement:
                return approval
        return None


def read_directives(script: Script, known_rules: Collection[str]) -> Directives:
    """Read the ignore, approve and data-loss directives of *script*."""
    found = Directives()
    directives = [
        d for d in script.directives if d.name in ("ignore", "approve", "data-loss")
    ]
    if not directives:
        return found
    starts = [s.start for s in script.statements]
    for directive in directives:
        line = directive.line + script.line_offset
        index = bisect.bisect_right(starts, directive.offset)
        statement = index if index < len(starts) else None
        argument = directive.argument
        if directive.name == "ignore":
            _ignore(found, argument, line, statement, known_rules)
        elif directive.name == "approve":
            kind, _, reason = argument.partition(" ")
            if kind != DATA_LOSS_ARGUMENT:
                found.problems.append(
                    (
                        line,
                        f'-- dbamgr:approve "{kind}": only data-loss can be approved, '
                        "e.g. -- dbamgr:approve data-loss the column was copied to x",
                    )
                )
            elif not reason.strip():
                found.problems.append(
                    (
                        line,
                        "-- dbamgr:approve data-loss needs a reason, e.g. "
                        "-- dbamgr:approve data-loss the column was copied to x",
                    )
                )
            elif statement is None:
                found.problems.append(
                    (line, "-- dbamgr:approve has no statement below it")
                )
            else:
                found.approvals.append(Approval(reason.strip(), line, statement))
        elif not argument:
            found.problems.append(
                (
                    line,
                    "-- dbamgr:data-loss needs a reason, e.g. -- dbamgr:data-loss "
                    "the legacy table is archived",
                )
            )
        else:
            found.approvals.append(Approval(argument, line, None))
    return found


def _ignore(
    found: Directives,
    argument: str,
    line: int,
    statement: int | None,
    known_rules: Collection[str],
) -> None:
    names, _, reason = argument.partition(" ")
    rules = tuple(r.strip() for r in names.split(",") if r.strip())
    if not rules:
        found.problems.append(
            (
                line,
                "-- dbamgr:ignore needs a rule id and a reason, e.g. "
                "-- dbamgr:ignore drop-column the column is unused since v2",
            )
        )
        return
    unknown = [r for r in rules if r not in known_rules]
    for rule in unknown:
        close = difflib.get_close_matches(rule, list(known_rules), n=1)
        advice = f' (did you mean "{close[0]}"?)' if close else ""
        found.problems.append(
            (line, f'-- dbamgr:ignore names unknown rule "{rule}"{advice}')
        )
    if not reason.strip():
        found.problems.append(
            (line, f"-- dbamgr:ignore {names} needs a reason after the rule id")
        )
        return
    if statement is None:
        found.problems.append((line, "-- dbamgr:ignore has no statement below it"))
        return
    known = tuple(r for r in rules if r not in unknown)
    if known:
        found.ignores.append(Ignore(known, reason.strip(), line, statement))
