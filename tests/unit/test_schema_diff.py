from __future__ import annotations

from typing import Any

from dbamgr.schema import Snapshot, diff_snapshots
from dbamgr.schema.snapshot import KINDS


def snapshot(**objects: dict[str, dict[str, Any]]) -> Snapshot:
    return Snapshot({kind: objects.get(kind, {}) for kind in KINDS})


def table(**parts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    nested = ("columns", "constraints", "indexes", "triggers", "policies")
    return {"kind": "table", "persistence": "permanent"} | {
        name: parts.get(name, {}) for name in nested
    }


ID = {"type": "integer", "not_null": True, "default": None, "position": 1}
PRICE = {"type": "numeric(10,2)", "not_null": True, "default": "0", "position": 2}
PRICE_INDEX = {
    "definition": "CREATE INDEX orders_price_idx ON public.orders USING btree (price)",
    "valid": True,
}


def test_an_added_index_carries_its_definition() -> None:
    before = snapshot(tables={"public.orders": table(columns={"id": ID})})
    after = snapshot(
        tables={
            "public.orders": table(
                columns={"id": ID}, indexes={"orders_price_idx": PRICE_INDEX}
            )
        }
    )
    (change,) = diff_snapshots(before, after).changes
    assert change.before is None and change.after == PRICE_INDEX
    assert change.describe() == (
        "+ table public.orders: index orders_price_idx (added): "
        "CREATE INDEX orders_price_idx ON public.orders USING btree (price)"
    )


def test_a_removed_column_shows_its_type_not_null_and_default() -> None:
    before = snapshot(tables={"public.orders": table(columns={"id": ID, "p": PRICE})})
    after = snapshot(tables={"public.orders": table(columns={"id": ID})})
    (change,) = diff_snapshots(before, after).changes
    assert change.before == PRICE and change.after is None
    assert change.describe() == (
        "- table public.orders: column p (removed): numeric(10,2) not null default 0"
    )


def test_an_added_table_lists_its_columns() -> None:
    after = snapshot(tables={"public.orders": table(columns={"p": PRICE, "id": ID})})
    (change,) = diff_snapshots(snapshot(), after).changes
    assert change.describe() == (
        "+ table public.orders (added): "
        "(id integer not null, p numeric(10,2) not null default 0)"
    )


def test_a_long_view_definition_is_cut_in_the_line_only() -> None:
    query = "SELECT " + ", ".join(f"o.column_{n}" for n in range(40)) + " FROM o"
    view = {"kind": "materialized view", "definition": f" {query};\n", "columns": {}}
    (change,) = diff_snapshots(snapshot(views={"public.v": view}), snapshot()).changes
    line = change.describe()
    assert line.startswith("- materialized view public.v (removed): SELECT o.column_0")
    assert line.endswith("…") and len(line) < 160
    assert change.before["definition"] == f" {query};\n"


def test_added_default_privileges_say_what_they_grant() -> None:
    entry = {"acl": ["reporting=r/(owner)"]}
    after = snapshot(default_privileges={"on tables in schema public": entry})
    (change,) = diff_snapshots(snapshot(), after).changes
    assert change.describe() == (
        "+ default privileges on tables in schema public (added): "
        "grants reporting=r/(owner)"
    )
