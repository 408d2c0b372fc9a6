from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from tests.conftest import ProjectFactory

from dbamgr import migrations
from dbamgr.schema import Snapshot, diff_snapshots, take_snapshot
from dbamgr.server import LocalCluster
from dbamgr.target import Target
from dbamgr.verify import detect_drift

FIXTURE = (Path(__file__).parent / "data" / "every_object.sql").read_text()


READER, OWNER = "dbamgr_test_reader", "dbamgr_test_owner"
VIEWER, APP = "dbamgr_test_viewer", "dbamgr_test_app"


def as_role(url: str, role: str) -> str:
    return url.replace("postgresql://postgres@", f"postgresql://{role}@")


def drop_roles(pg_cluster: LocalCluster, *roles: str) -> None:
    with pg_cluster.connect() as conn:
        for role in roles:
            exists = conn.execute(
                "SELECT 1 FROM pg_roles WHERE rolname = %s", [role]
            ).fetchone()
            if exists:
                conn.execute(f"DROP OWNED BY {role}")
                conn.execute(f"DROP ROLE {role}")


@pytest.fixture(scope="module")
def fixture_snapshots(pg_cluster: LocalCluster) -> Iterator[list[Snapshot]]:
    """The fixture schema built twice, in two independent databases: by the
    superuser, and by a role that owns the second database."""
    drop_roles(pg_cluster, READER, OWNER)
    snapshots = []
    url = pg_cluster.create_database("snap_a")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION btree_gist")
        conn.execute(FIXTURE)
        conn.execute("CREATE SCHEMA dbamgr; CREATE TABLE dbamgr.hidden (id int)")
        snapshots.append(take_snapshot(conn))
    url = pg_cluster.create_database("snap_b")
    with pg_cluster.connect() as conn:
        conn.execute(f"CREATE ROLE {OWNER} LOGIN")
        conn.execute(f"GRANT {READER} TO {OWNER}")
        conn.execute(f"ALTER DATABASE snap_b OWNER TO {OWNER}")
    with psycopg.connect(url, autocommit=True) as conn:
        # an extension that is not trusted, made by the superuser
        conn.execute("CREATE EXTENSION postgres_fdw")
        conn.execute(f"GRANT USAGE ON FOREIGN DATA WRAPPER postgres_fdw TO {OWNER}")
    with psycopg.connect(as_role(url, OWNER), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION btree_gist")
        conn.execute(FIXTURE.replace(f"CREATE ROLE {READER};", ""))
        conn.execute("CREATE SCHEMA dbamgr; CREATE TABLE dbamgr.hidden (id int)")
        snapshots.append(take_snapshot(conn))
    yield snapshots
    for name in ("snap_a", "snap_b"):
        pg_cluster.drop_database(name)
    drop_roles(pg_cluster, READER, OWNER)


def test_every_object_kind_is_captured(fixture_snapshots: list[Snapshot]) -> None:
    objects = fixture_snapshots[0].objects
    assert {"app", "public"} <= set(objects["schemas"])
    assert objects["schemas"]["app"]["comment"] == "the application"
    assert "citext" in objects["extensions"]

    accounts = objects["tables"]["app.accounts"]
    assert accounts["rls"] is True and accounts["comment"] == "people who pay"
    columns = accounts["columns"]
    assert columns["id"]["identity"] == "always"
    assert columns["name"]["collation"] == '"C"'
    assert columns["name"]["default"] == "'anon'::text"
    assert columns["balance"]["type"] == "numeric(12,2)"
    assert columns["balance"]["comment"] == "in euros"
    assert columns["name_length"]["generated"] == "stored: length(name)"
    assert [columns[c]["position"] for c in ("id", "email", "name")] == [1, 2, 3]
    constraints = accounts["constraints"]
    assert constraints["accounts_pkey"]["type"] == "primary key"
    assert constraints["accounts_name_not_empty"]["validated"] is False
    assert "accounts_created" in accounts["indexes"]
    assert "WHERE" in accounts["indexes"]["accounts_created"]["definition"]
    assert accounts["triggers"]["accounts_touch"]["enabled"] == "enabled"
    assert accounts["policies"]["own_account"]["command"] == "SELECT"

    sessions = objects["tables"]["app.sessions"]
    assert sessions["persistence"] == "unlogged"
    assert sessions["options"] == ["fillfactor=70"]
    fk = sessions["constraints"]["sessions_account_id_fkey"]
    assert fk["type"] == "foreign key" and fk["deferrable"] and fk["deferred"]
    assert "ON DELETE CASCADE" in fk["definition"]
    assert any(c["type"] == "exclusion" for c in sessions["constraints"].values())

    assert objects["tables"]["app.events"]["kind"] == "partitioned table"
    assert objects["tables"]["app.events"]["partition_key"] == "RANGE (at)"
    assert objects["tables"]["app.events_2026"]["partition_of"] == "app.events"

    assert objects["views"]["app.happy_accounts"]["kind"] == "view"
    matview = objects["views"]["app.account_counts"]
    assert matview["kind"] == "materialized view"
    assert "account_counts_mood" in matview["indexes"]

    sequence = objects["sequences"]["app.ticket_seq"]
    assert (sequence["start"], sequence["increment"]) == (100, 5)
    assert sequence["owned_by"] == "app.accounts.ticket"

    functions = objects["functions"]
    assert functions["app.add(a integer, b integer)"]["volatility"] == "immutable"
    assert functions["app.reset_mood(IN who bigint)"]["kind"] == "procedure"
    assert functions["app.total(integer)"]["kind"] == "aggregate"
    assert "NEW.created_at" in functions["app.touch()"]["body"]

    types = objects["types"]
    assert types["app.mood"]["labels"] == ["sad", "ok", "happy"]
    assert types["app.email"]["kind"] == "domain"
    assert types["app.email"]["not_null"] is True
    assert types["app.point2"]["attributes"] == [
        "x double precision",
        "y double precision",
    ]
    assert types["app.floatrange"]["subtype"] == "double precision"


@pytest.fixture(scope="module")
def major(pg_cluster: LocalCluster) -> int:
    with pg_cluster.connect() as conn:
        return int(conn.info.server_version // 10000)


def test_definitions_are_read_exactly(
    fixture_snapshots: list[Snapshot], pg_cluster: LocalCluster, major: int
) -> None:
    objects = fixture_snapshots[0].objects
    # PostgreSQL 16 stopped qualifying the columns of a view's only table
    prefix = "accounts." if major < 16 else ""
    assert objects["views"]["app.happy_accounts"]["definition"] == (
        f" SELECT {prefix}id,\n    {prefix}email\n   FROM app.accounts\n"
        f"  WHERE {prefix}mood = 'happy'::app.mood;"
    )
    assert objects["views"]["app.account_counts"]["definition"] == (
        f" SELECT {prefix}mood,\n    count(*) AS n\n   FROM app.accounts\n"
        f"  GROUP BY {prefix}mood;"
    )

    add = objects["functions"]["app.add(a integer, b integer)"]
    assert (add["language"], add["arguments"], add["result"]) == (
        "sql",
        "a integer, b integer DEFAULT 1",
        "integer",
    )
    assert add["body"] == "RETURN (a + b)"
    assert (add["strict"], add["parallel"]) == (True, "safe")
    reset = objects["functions"]["app.reset_mood(IN who bigint)"]
    assert reset["body"] == (
        "BEGIN ATOMIC\n UPDATE app.accounts SET mood = 'ok'::app.mood\n"
        "   WHERE (accounts.id = reset_mood.who);\nEND"
    )
    assert objects["functions"]["app.total(integer)"]["aggregate"] == {
        "transition": "int4pl",
        "final": None,
        "state_type": "integer",
        "initial": "0",
    }

    email = objects["types"]["app.email"]
    assert email["base_type"] == "public.citext"
    assert email["checks"] == {
        "email_check": "CHECK (VALUE OPERATOR(public.~) '@'::public.citext)"
    }
    assert email["default"] == "'nobody@example.com'::public.citext"

    events = objects["tables"]["app.events"]
    assert events["indexes"]["events_payload"]["definition"] == (
        "CREATE INDEX events_payload ON ONLY app.events USING gin (payload)"
    )
    counts = objects["views"]["app.account_counts"]
    assert counts["indexes"]["account_counts_mood"]["definition"] == (
        "CREATE UNIQUE INDEX account_counts_mood ON app.account_counts "
        "USING btree (mood)"
    )
    accounts = objects["tables"]["app.accounts"]
    assert accounts["triggers"]["accounts_touch"]["definition"] == (
        "CREATE TRIGGER accounts_touch BEFORE INSERT ON app.accounts "
        "FOR EACH ROW EXECUTE FUNCTION app.touch()"
    )
    assert accounts["columns"]["ticket"]["default"] == (
        "nextval('app.ticket_seq'::regclass)"
    )
    assert objects["sequences"]["app.ticket_seq"]["type"] == "integer"
    assert objects["sequences"]["app.accounts_id_seq"]["type"] == "bigint"

    with pg_cluster.connect() as conn:
        version = conn.execute(
            "SELECT default_version FROM pg_available_extensions WHERE name = 'citext'"
        ).fetchone()
    assert objects["extensions"]["citext"] == {
        "schema": "public",
        "version": version[0] if version else None,
        "comment": "emails",
    }


def test_privileges_of_columns_functions_sequences_and_types(
    fixture_snapshots: list[Snapshot],
) -> None:
    objects = fixture_snapshots[0].objects
    columns = objects["tables"]["app.accounts"]["columns"]
    assert columns["name"]["acl"] == [f"{READER}=w/(owner)"]
    assert columns["nickname"]["acl"] == [f"{READER}=w/(owner)"]
    assert columns["email"]["acl"] is None
    assert objects["functions"]["app.add(a integer, b integer)"]["acl"] == [
        "(owner)=X/(owner)",
        "=X/(owner)",
        f"{READER}=X/(owner)",
    ]
    assert objects["sequences"]["app.ticket_seq"]["acl"] == [
        "(owner)=rwU/(owner)",
        f"{READER}=U/(owner)",
    ]
    assert objects["types"]["app.mood"]["acl"] == [
        "(owner)=U/(owner)",
        "=U/(owner)",
        f"{READER}=U/(owner)",
    ]


def test_default_privileges_are_captured(fixture_snapshots: list[Snapshot]) -> None:
    assert fixture_snapshots[0].objects["default_privileges"] == {
        "on tables in schema app": {"acl": [f"{READER}=r/(owner)"]},
        # the global entry replaces the built-in defaults: PUBLIC lost EXECUTE
        "on functions": {"acl": ["(owner)=X/(owner)"]},
        f"for role {READER} on sequences in schema app": {"acl": ["=U/(owner)"]},
    }


def test_collations_outside_pg_catalog_are_qualified(
    fixture_snapshots: list[Snapshot],
) -> None:
    objects = fixture_snapshots[0].objects
    columns = objects["tables"]["app.accounts"]["columns"]
    assert columns["name"]["collation"] == '"C"'
    assert columns["nickname"]["collation"] == 'app."C"'
    assert objects["types"]["app.code"]["collation"] == 'app."C"'
    # a domain that keeps its base type's collation names none
    assert objects["types"]["app.email"]["collation"] is None
    assert objects["types"]["app.label"]["attributes"] == [
        'sorted text COLLATE "C"',
        'coded text COLLATE app."C"',
        "plain text",
    ]


def test_policies_materialized_views_replica_identity_and_foreign_tables(
    fixture_snapshots: list[Snapshot],
) -> None:
    objects = fixture_snapshots[0].objects
    accounts = objects["tables"]["app.accounts"]
    assert accounts["policies"]["own_account"]["comment"] == "each sees their own"
    assert objects["views"]["app.account_counts"]["populated"] is True
    assert objects["views"]["app.pending"]["populated"] is False
    assert "populated" not in objects["views"]["app.happy_accounts"]
    assert accounts["replica_identity"] == "index accounts_email_key"
    assert objects["tables"]["app.sessions"]["replica_identity"] == "full"
    assert objects["tables"]["app.events"]["replica_identity"] == "default"
    remote = objects["tables"]["app.remote_accounts"]
    assert remote["kind"] == "foreign table"
    assert remote["server"] == "elsewhere"
    assert remote["foreign_options"] == ["schema_name=app", "table_name=accounts"]
    assert "server" not in accounts


def test_owners_are_named_apart_from_privileges(
    pg_cluster: LocalCluster, fixture_snapshots: list[Snapshot]
) -> None:
    with pg_cluster.connect() as conn:
        every = "arwdDxtm" if conn.info.server_version >= 170000 else "arwdDxt"
    objects = fixture_snapshots[0].objects
    accounts = objects["tables"]["app.accounts"]
    assert accounts["acl"] == [f"(owner)={every}/(owner)", f"{READER}=r/(owner)"]
    # the role that reads the snapshot (it built the schema) is no owner to name
    assert accounts["owner"] is None
    view = objects["views"]["app.happy_accounts"]
    assert view["owner"] == READER
    assert view["acl"] == [f"(owner)={every}/(owner)"]
    assert objects["schemas"]["app"]["acl"] == [
        "(owner)=UC/(owner)",
        f"{READER}=UC/(owner)",
    ]
    assert objects["schemas"]["public"]["owner"] == "pg_database_owner"
    assert objects["schemas"]["public"]["acl"] == ["(owner)=UC/(owner)", "=U/(owner)"]


def test_drift_is_blind_to_the_role_that_ran_the_migrations(
    project_files: ProjectFactory, pg_cluster: LocalCluster
) -> None:
    # live, the migrations ran as the database's owner; the replay runs as the
    # superuser
    project_files.write_config(f'[server]\ndata_dir = "{pg_cluster.directory}"\n')
    project_files.add(
        "1",
        "base",
        "CREATE TABLE t (id int, label text);\nCREATE FUNCTION f() RETURNS int "
        f"LANGUAGE sql RETURN 1;\nGRANT SELECT, UPDATE (label) ON t TO {VIEWER};",
        "DROP FUNCTION f();\nDROP TABLE t;",
    )
    drop_roles(pg_cluster, VIEWER, APP)
    url = pg_cluster.create_database("snap_drift_owner")
    with pg_cluster.connect() as conn:
        conn.execute(f"CREATE ROLE {VIEWER}")
        conn.execute(f"CREATE ROLE {APP} LOGIN")
        conn.execute(f"ALTER DATABASE snap_drift_owner OWNER TO {APP}")
    try:
        target = Target("test", as_role(url, APP))
        migrations.up(project_files.project, target)
        clean = detect_drift(project_files.project, target)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"ALTER FUNCTION public.f() OWNER TO {VIEWER}")
        moved = detect_drift(project_files.project, target)
    finally:
        pg_cluster.drop_database("snap_drift_owner")
        drop_roles(pg_cluster, VIEWER, APP)
    assert [change.describe() for change in clean.changes] == []
    assert [change.describe() for change in moved.changes] == [
        f"~ function public.f(): owner: (none) → {VIEWER}"
    ]


def test_dbamgr_schema_is_left_out(fixture_snapshots: list[Snapshot]) -> None:
    objects = fixture_snapshots[0].objects
    assert "dbamgr" not in objects["schemas"]
    assert not any(name.startswith("dbamgr.") for name in objects["tables"])


def test_two_builds_give_byte_identical_snapshots(
    fixture_snapshots: list[Snapshot],
) -> None:
    first, second = fixture_snapshots
    assert first.to_json() == second.to_json()
    assert not diff_snapshots(first, second)


def test_snapshots_do_not_depend_on_session_settings(
    pg_cluster: LocalCluster, fixture_snapshots: list[Snapshot]
) -> None:
    # a database whose sessions, once the schema is built, see app and public
    # unqualified, and print times, intervals, floats and bytes in other styles
    url = pg_cluster.create_database("snap_settings")
    settings = {
        "search_path": "app, public",
        "TimeZone": "'Asia/Tokyo'",
        "DateStyle": "German",
        "IntervalStyle": "sql_standard",
        "extra_float_digits": "0",
        "bytea_output": "escape",
    }
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION btree_gist")
            conn.execute(FIXTURE.replace(f"CREATE ROLE {READER};", ""))
            for name, value in settings.items():
                conn.execute(f"ALTER DATABASE snap_settings SET {name} = {value}")
        with psycopg.connect(url, autocommit=True) as conn:
            under_settings = take_snapshot(conn)
            conn.execute("SET search_path = public")
            under_public = take_snapshot(conn)
            # the session's own settings are left as they were
            assert conn.execute("SHOW search_path").fetchone() == ("public",)
            assert conn.execute("SHOW TimeZone").fetchone() == ("Asia/Tokyo",)
    finally:
        pg_cluster.drop_database("snap_settings")
    expected = fixture_snapshots[0].to_json()
    assert under_settings.to_json() == expected
    assert under_public.to_json() == expected
    sessions = fixture_snapshots[0].objects["tables"]["app.sessions"]
    assert [sessions["columns"][c]["default"] for c in ("ttl", "weight", "salt")] == [
        "'1 day 02:00:00'::interval",
        "0.3333333333333333",
        "'\\x00ff'::bytea",
    ]
    events_2026 = fixture_snapshots[0].objects["tables"]["app.events_2026"]
    assert events_2026["partition_bound"] == (
        "FOR VALUES FROM ('2026-01-01 00:00:00+00') TO ('2027-01-01 00:00:00+00')"
    )


def test_drift_is_blind_to_search_path_settings(
    project_files: ProjectFactory, pg_cluster: LocalCluster
) -> None:
    # the live database sees app unqualified, and so does the scratch session
    # after the second migration's SET
    project_files.write_config(f'[server]\ndata_dir = "{pg_cluster.directory}"\n')
    project_files.add(
        "1",
        "app",
        "CREATE SCHEMA app;\nCREATE TABLE app.p (id int PRIMARY KEY);\n"
        "CREATE TABLE app.c (p int REFERENCES app.p, s serial);",
        "DROP SCHEMA app CASCADE;",
    )
    project_files.add(
        "2",
        "path",
        "SET search_path = app, public;\nCREATE TABLE d (p int REFERENCES p);",
        "DROP TABLE app.d;",
    )
    url = pg_cluster.create_database("snap_drift_path")
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ALTER DATABASE snap_drift_path SET search_path = app, public")
        target = Target("test", url)
        migrations.up(project_files.project, target)
        report = detect_drift(project_files.project, target)
    finally:
        pg_cluster.drop_database("snap_drift_path")
    assert [change.describe() for change in report.changes] == []


def test_snapshot_survives_a_json_round_trip(
    fixture_snapshots: list[Snapshot], tmp_path: Path
) -> None:
    path = tmp_path / "snap.json"
    path.write_text(fixture_snapshots[0].to_json())
    loaded = Snapshot.load(path)
    assert loaded.to_json() == fixture_snapshots[0].to_json()
    assert json.loads(path.read_text())["format"] == 2


def test_snapshots_name_the_major_version_only(
    pg_cluster: LocalCluster, fixture_snapshots: list[Snapshot]
) -> None:
    # the same migrations on two minor releases give the same bytes
    with pg_cluster.connect() as conn:
        major = conn.info.server_version // 10000
    data = json.loads(fixture_snapshots[0].to_json())
    assert data["server_major"] == major
    assert "server_version" not in data


def test_a_snapshot_file_of_the_first_format_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "old.json"
    table = {"kind": "table", "columns": {"id": {"type": "integer"}}}
    old = {"format": 1, "server_version": 150004, "objects": {"tables": {"t": table}}}
    path.write_text(json.dumps(old))
    loaded = Snapshot.load(path)
    assert loaded.server_major == 15
    assert loaded.objects["tables"] == {"t": table}
    assert json.loads(loaded.to_json())["format"] == 2


def test_constraints_copied_for_partitions_are_left_to_their_parent(
    db_url: str,
) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE orders (id int, placed date, PRIMARY KEY (id, placed))"
            " PARTITION BY RANGE (placed);"
            "CREATE TABLE items (order_id int, placed date,"
            " FOREIGN KEY (order_id, placed) REFERENCES orders);"
        )
        before = take_snapshot(conn)
        conn.execute(
            "CREATE TABLE orders_2026 PARTITION OF orders"
            " FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')"
        )
        after = take_snapshot(conn)
    tables = after.objects["tables"]
    assert sorted(tables["public.items"]["constraints"]) == [
        "items_order_id_placed_fkey"
    ]
    assert tables["public.orders_2026"]["constraints"] == {}
    (change,) = diff_snapshots(before, after).changes
    assert change.describe().startswith("+ table public.orders_2026 (added): (id ")
