from __future__ import annotations

from pathlib import Path

import pytest

from dbamgr.errors import SourceError
from dbamgr.migrations.source import DIRECTORY, PAIR, SINGLE, load_migrations


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_three_layouts_are_read_side_by_side(tmp_path: Path) -> None:
    write(tmp_path / "2019-02-26-002946_users" / "up.sql", "CREATE TABLE u (id int);")
    write(tmp_path / "2019-02-26-002946_users" / "down.sql", "DROP TABLE u;")
    write(tmp_path / "20190301000000_orders.up.sql", "CREATE TABLE o (id int);")
    write(tmp_path / "20190301000000_orders.down.sql", "DROP TABLE o;")
    write(
        tmp_path / "20190401000000_items.sql",
        "-- migrate:up\nCREATE TABLE i (id int);\n\n-- migrate:down\nDROP TABLE i;\n",
    )
    found = load_migrations(tmp_path).migrations
    assert [(m.version, m.name, m.layout) for m in found] == [
        (20190226002946, "users", DIRECTORY),
        (20190301000000, "orders", PAIR),
        (20190401000000, "items", SINGLE),
    ]
    assert found[0].label == "2019-02-26-002946"
    assert all(m.has_down for m in found)


def test_versions_are_ordered_as_numbers(tmp_path: Path) -> None:
    for version in ("9", "10", "100", "011"):
        write(tmp_path / f"{version}_m.up.sql", "SELECT 1;")
        write(tmp_path / f"{version}_m.down.sql", "SELECT 1;")
    assert [m.version for m in load_migrations(tmp_path).migrations] == [9, 10, 11, 100]


def test_same_version_with_and_without_separators_is_a_duplicate(
    tmp_path: Path,
) -> None:
    write(tmp_path / "2019-02-26-002946_a" / "up.sql", "SELECT 1;")
    write(tmp_path / "20190226002946_b.up.sql", "SELECT 1;")
    with pytest.raises(SourceError) as caught:
        load_migrations(tmp_path)
    message = str(caught.value)
    assert "20190226002946" in message
    assert "2019-02-26-002946_a" in message and "20190226002946_b.up.sql" in message


def test_unreadable_names_and_lone_downs_are_errors_with_paths(tmp_path: Path) -> None:
    write(tmp_path / "add_users.sql", "SELECT 1;")
    write(tmp_path / "5_x.down.sql", "SELECT 1;")
    write(tmp_path / "6_y" / "down.sql", "SELECT 1;")
    with pytest.raises(SourceError) as caught:
        load_migrations(tmp_path)
    problems = caught.value.context["problems"]
    assert any("add_users.sql" in p and "cannot read a version" in p for p in problems)
    assert any("5_x.down.sql" in p and "no matching .up.sql" in p for p in problems)
    assert any("6_y" in p and "has no up.sql" in p for p in problems)


def test_stray_files_are_warnings(tmp_path: Path) -> None:
    write(tmp_path / "1_a" / "up.sql", "SELECT 1;")
    write(tmp_path / "1_a" / "down.sql", "SELECT 1;")
    write(tmp_path / "1_a" / "notes.txt", "x")
    write(tmp_path / "schema.png", "x")
    write(tmp_path / "README.md", "x")
    write(tmp_path / ".gitkeep", "")
    found = load_migrations(tmp_path)
    stray = sorted(p.path.name for p in found.warnings)
    assert stray == ["notes.txt", "schema.png"]


def test_missing_and_empty_downs_are_detected(tmp_path: Path) -> None:
    write(tmp_path / "1_a" / "up.sql", "SELECT 1;")
    write(tmp_path / "2_b" / "up.sql", "SELECT 1;")
    write(tmp_path / "2_b" / "down.sql", "-- nothing to undo?\n")
    first, second = load_migrations(tmp_path).migrations
    assert first.down is None and not first.has_down
    assert second.down is not None and not second.has_down


def test_dbmate_sections_keep_file_line_numbers(tmp_path: Path) -> None:
    write(
        tmp_path / "1_a.sql",
        "-- migrate:up transaction:false\n\nCREATE INDEX CONCURRENTLY i ON t (c);\n"
        "-- migrate:down\nDROP INDEX i;\n",
    )
    (migration,) = load_migrations(tmp_path).migrations
    assert migration.up.statements[0].line == 3
    assert migration.down is not None
    assert migration.down.statements[0].line == 5
    assert not migration.up.in_transaction
    assert migration.down.in_transaction


def test_dbmate_file_without_markers_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "1_a.sql", "CREATE TABLE t (id int);")
    with pytest.raises(SourceError, match="migrate:up"):
        load_migrations(tmp_path)


def test_no_transaction_must_be_the_first_line(tmp_path: Path) -> None:
    write(tmp_path / "1_a" / "up.sql", "-- dbamgr:no-transaction\nSELECT 1;")
    write(tmp_path / "1_a" / "down.sql", "SELECT 1;")
    (migration,) = load_migrations(tmp_path).migrations
    assert not migration.up.in_transaction
    write(tmp_path / "2_b" / "up.sql", "SELECT 1;\n-- dbamgr:no-transaction\n")
    write(tmp_path / "2_b" / "down.sql", "SELECT 1;")
    with pytest.raises(SourceError, match="must be the first line"):
        load_migrations(tmp_path)


def test_diesel_metadata_turns_the_transaction_off(tmp_path: Path) -> None:
    write(tmp_path / "1_a" / "up.sql", "SELECT 1;")
    write(tmp_path / "1_a" / "down.sql", "SELECT 1;")
    write(tmp_path / "1_a" / "metadata.toml", "run_in_transaction = false\n")
    (migration,) = load_migrations(tmp_path).migrations
    assert not migration.up.in_transaction
    assert migration.down is not None and not migration.down.in_transaction


def test_unknown_directive_suggests_the_known_one(tmp_path: Path) -> None:
    write(tmp_path / "1_a" / "up.sql", "-- dbamgr:no-transacton\nSELECT 1;")
    write(tmp_path / "1_a" / "down.sql", "SELECT 1;")
    with pytest.raises(SourceError) as caught:
        load_migrations(tmp_path)
    assert 'did you mean "dbamgr:no-transaction"' in str(caught.value)
    assert "line 1" in str(caught.value)


def test_irreversible_needs_a_reason(tmp_path: Path) -> None:
    write(tmp_path / "1_a" / "up.sql", "-- dbamgr:irreversible\nDROP TABLE t;")
    with pytest.raises(SourceError, match="needs a reason"):
        load_migrations(tmp_path)


def test_irreversible_reason_is_read(tmp_path: Path) -> None:
    write(
        tmp_path / "1_a" / "up.sql",
        "-- dbamgr:irreversible drops the legacy audit log\nDROP TABLE audit;",
    )
    (migration,) = load_migrations(tmp_path).migrations
    assert migration.irreversible_reason == "drops the legacy audit log"


def test_checksum_ignores_line_ending_style_but_not_content(tmp_path: Path) -> None:
    write(tmp_path / "a" / "1_a" / "up.sql", "SELECT 1;\nSELECT 2;\n")
    (tmp_path / "b" / "1_a").mkdir(parents=True)
    (tmp_path / "b" / "1_a" / "up.sql").write_bytes(b"SELECT 1;\r\nSELECT 2;\r\n")
    write(tmp_path / "c" / "1_a" / "up.sql", "SELECT 1;\nSELECT 3;\n")
    sums = [load_migrations(tmp_path / d).migrations[0].checksum for d in "abc"]
    assert sums[0] == sums[1] != sums[2]


def test_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        load_migrations(tmp_path / "nope")
