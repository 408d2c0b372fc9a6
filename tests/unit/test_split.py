from __future__ import annotations

from dbamgr.sql import find_directives, has_statements, split_statements
from dbamgr.sql.split import LineIndex


def test_statements_keep_their_line_and_column() -> None:
    source = (
        "-- header\nCREATE TABLE a (id int);\n\n  /* c */ INSERT INTO a VALUES (1);\n"
    )
    first, second = split_statements(source)
    assert (first.text, first.line, first.column) == ("CREATE TABLE a (id int)", 2, 1)
    assert (second.text, second.line, second.column) == (
        "INSERT INTO a VALUES (1)",
        4,
        11,
    )


def test_semicolons_inside_bodies_do_not_split() -> None:
    source = (
        "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$\n"
        "BEGIN RETURN 1; END; $$;\n"
        "CREATE FUNCTION g() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END;\n"
        "SELECT ';';\n"
    )
    statements = split_statements(source)
    assert len(statements) == 3
    assert statements[1].text.endswith("END")
    assert statements[2].text == "SELECT ';'"


def test_invalid_sql_still_splits_so_the_server_can_judge() -> None:
    source = "CREATE TABLE a (id int) WITH NONSENSE;\nSELECT 2;\n"
    statements = split_statements(source)
    assert [s.line for s in statements] == [1, 2]


def test_unterminated_quote_is_sent_whole() -> None:
    statements = split_statements("SELECT 'oops")
    assert len(statements) == 1


def test_non_ascii_text_keeps_character_positions() -> None:
    source = "SELECT 'ééé';\nSELECT 'x';"
    second = split_statements(source)[1]
    assert source[second.start :].startswith("SELECT 'x'")
    assert (second.line, second.column) == (2, 1)


def test_comment_only_scripts_have_no_statements() -> None:
    assert not has_statements("-- nothing\n/* at all */\n\n")
    assert has_statements("-- one\nSELECT 1")


def test_line_index_counts_from_one() -> None:
    index = LineIndex("ab\ncd\n")
    assert index.locate(0) == (1, 1)
    assert index.locate(4) == (2, 2)


def test_directives_are_found_in_comments_only() -> None:
    source = (
        "-- dbamgr:no-transaction\n"
        "SELECT '-- dbamgr:ignore not-a-comment';\n"
        "-- dbamgr:ignore some-rule because\n"
        "SELECT 1;"
    )
    found = find_directives(source)
    assert [(d.name, d.argument, d.line) for d in found] == [
        ("no-transaction", "", 1),
        ("ignore", "some-rule because", 3),
    ]


def test_unknown_statements_are_never_dropped() -> None:
    statements = split_statements("CREATE TABLE a (id int);\nSELEC 1;\nSELECT 2")
    assert [s.text for s in statements] == [
        "CREATE TABLE a (id int)",
        "SELEC 1",
        "SELECT 2",
    ]


def test_scanner_split_respects_atomic_bodies() -> None:
    source = (
        "CREATE FUNCTION g() RETURNS int LANGUAGE sql BEGIN ATOMIC "
        "SELECT CASE WHEN true THEN 1 END; END;\nSELEC 1;"
    )
    statements = split_statements(source)
    assert len(statements) == 2
    assert statements[0].text.endswith("END; END")
    assert (statements[1].line, statements[1].column) == (2, 1)


def test_nested_block_comments_are_still_comments() -> None:
    assert not has_statements("/* outer /* inner */ still outer */\n-- end")
    assert has_statements("/* a /* b */ */ SELECT 1")
    assert not has_statements("/* unterminated")
