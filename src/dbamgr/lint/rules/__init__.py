"""The lint's rules, gathered from their modules.

Each module holds the :class:`~dbamgr.lint.model.Rule` descriptions of one hazard
family in ``RULES`` and registers its analysers for the statement kinds it reads.
"""

from __future__ import annotations

from dbamgr.lint.model import DIRECTIVE, SYNTAX, Rule, Severity
from dbamgr.lint.rules import (
    columns,
    constraints,
    data,
    indexes,
    misc,
    tables,
    transactions,
    types,
)
from dbamgr.lint.rules._registry import ANALYZERS
from dbamgr.lint.rules.transactions import TransactionTracker

META_RULES = [
    Rule(
        "syntax-error",
        Severity.ERROR,
        SYNTAX,
        "statement the parser cannot read",
        "PostgreSQL's parser rejects it (or it uses syntax newer than the lint's "
        "parser), so nothing about it could be checked",
    ),
    Rule(
        "invalid-directive",
        Severity.ERROR,
        DIRECTIVE,
        "malformed -- dbamgr:ignore or -- dbamgr:approve comment",
        "an ignore must name known rules and give a reason; an approve must say "
        "data-loss and give a reason",
    ),
    Rule(
        "unused-ignore",
        Severity.WARNING,
        DIRECTIVE,
        "-- dbamgr:ignore that silences nothing",
        "the statement below it no longer has the finding, so the comment only "
        "hides a future one",
        "remove the comment",
    ),
]

RULES: dict[str, Rule] = {
    rule.id: rule
    for module in (
        types,
        columns,
        constraints,
        tables,
        indexes,
        data,
        misc,
        transactions,
    )
    for rule in module.RULES
}
RULES.update({rule.id: rule for rule in META_RULES})

__all__ = ["ANALYZERS", "RULES", "TransactionTracker"]
