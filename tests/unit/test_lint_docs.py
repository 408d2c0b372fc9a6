"""The lint's documentation lists every rule with its current severity."""

from __future__ import annotations

from pathlib import Path

from dbamgr.lint import RULES

DOC = Path(__file__).resolve().parents[2] / "docs" / "lint.md"


def test_every_rule_is_documented_with_its_severity() -> None:
    text = DOC.read_text()
    for rule in RULES.values():
        row = f'| <a id="{rule.id}"></a>`{rule.id}` | {rule.severity.label} |'
        assert row in text, f"docs/lint.md lacks {rule.id} ({rule.severity.label})"
