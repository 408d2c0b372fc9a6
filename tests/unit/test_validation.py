from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

import pytest

from dbamgr.validation import Invalid, Range, build


@dataclass(frozen=True)
class Inner:
    size: Annotated[int, Range(1, 10)] = 1
    mode: Literal["fast", "safe"] = "safe"


@dataclass(frozen=True)
class Outer:
    name: str = "x"
    ratio: float = 1.0
    tags: list[str] = field(default_factory=list)
    inner: Inner = field(default_factory=Inner)
    named: dict[str, Inner] = field(default_factory=dict)
    optional: int | None = None


def test_nested_tables_lists_and_numbers_are_built() -> None:
    built = build(
        Outer,
        {
            "ratio": 2,
            "tags": ["a", "b"],
            "inner": {"size": 3, "mode": "fast"},
            "named": {"one": {"size": 4}},
        },
    )
    assert built.ratio == 2.0 and isinstance(built.ratio, float)
    assert built.inner == Inner(3, "fast")
    assert built.named == {"one": Inner(4, "safe")}


def test_every_problem_is_reported_with_its_path() -> None:
    with pytest.raises(Invalid) as caught:
        build(
            Outer,
            {
                "nmae": "y",
                "tags": ["a", 3],
                "inner": {"size": 11, "mode": "slow"},
                "named": {"one": {"size": True}},
            },
        )
    found = {problem.path: problem for problem in caught.value.problems}
    assert found["nmae"].unknown and 'did you mean "name"' in found["nmae"].message
    assert "expected a string" in found["tags[1]"].message
    assert "between 1 and 10" in found["inner.size"].message
    assert "is not one of" in found["inner.mode"].message
    assert "expected an integer" in found["named.one.size"].message
