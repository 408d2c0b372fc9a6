"""The lint's lock and rewrite claims, checked against a real server.

Each statement runs in a transaction on tables with rows; what the session then
holds in pg_locks and whether the relation's relfilenode changed must match what
the lint says the statement does. The transaction is rolled back.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from dbamgr.lint import LintConfig, Linter, Lock, Schema, Settings
from dbamgr.lint.catalog import LiveCatalog
from dbamgr.migrations.source import Script
from dbamgr.server import LocalCluster, scratch_name

SETUP = """
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE u (id bigint PRIMARY KEY);
INSERT INTO u SELECT g FROM generate_series(1, 1000) g;
CREATE TABLE t (
    id bigint PRIMARY KEY,
    a integer,
    b text,
    v varchar(10),
    n numeric(10,2),
    ts timestamp,
    c cidr,
    nn bigint NOT NULL DEFAULT 0
);
INSERT INTO t
SELECT g, g, 'b' || g, 'v', g, now(), '10.0.0.0/8', g
  FROM generate_series(1, 1000) g;
CREATE INDEX t_a_idx ON t (a);
CREATE UNIQUE INDEX t_nn_key ON t (nn);
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER t_touch BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION touch();
CREATE MATERIALIZED VIEW mv AS SELECT id FROM t;
CREATE TABLE m (id bigint, at int) PARTITION BY RANGE (at);
CREATE TABLE m_1 PARTITION OF m FOR VALUES FROM (1) TO (100);
CREATE TABLE m_2 (id bigint, at int);
INSERT INTO m_2 SELECT g, 150 FROM generate_series(1, 100) g;
ANALYZE;
"""


def needs_pg18(statement: str) -> bool:
    return statement.endswith("NOT NULL a") and "CONSTRAINT" in statement


# one statement of each class of DDL (and a few DML) the lint makes claims about
CASES = [
    "ALTER TABLE t ADD COLUMN x bigint",
    "ALTER TABLE t ADD COLUMN x bigint DEFAULT 7",
    "ALTER TABLE t ADD COLUMN x timestamptz DEFAULT now()",
    "ALTER TABLE t ADD COLUMN x double precision DEFAULT random()",
    "ALTER TABLE t ADD COLUMN x uuid DEFAULT gen_random_uuid()",
    "ALTER TABLE t ADD COLUMN x bigint GENERATED ALWAYS AS IDENTITY",
    "ALTER TABLE t ADD COLUMN x bigserial",
    "ALTER TABLE t ADD COLUMN x bigint GENERATED ALWAYS AS (a * 2) STORED",
    "ALTER TABLE t ADD COLUMN x bigint REFERENCES u (id)",
    "ALTER TABLE t ALTER COLUMN a TYPE bigint",
    "ALTER TABLE t ALTER COLUMN v TYPE varchar(20)",
    "ALTER TABLE t ALTER COLUMN v TYPE text",
    "ALTER TABLE t ALTER COLUMN v TYPE varchar(5)",
    "ALTER TABLE t ALTER COLUMN b TYPE varchar(30)",
    "ALTER TABLE t ALTER COLUMN b TYPE varchar",
    "ALTER TABLE t ALTER COLUMN n TYPE numeric(12,2)",
    "ALTER TABLE t ALTER COLUMN n TYPE numeric",
    "ALTER TABLE t ALTER COLUMN n TYPE numeric(12,3)",
    "ALTER TABLE t ALTER COLUMN ts TYPE timestamp(3)",
    "ALTER TABLE t ALTER COLUMN ts TYPE timestamptz",
    "ALTER TABLE t ALTER COLUMN c TYPE inet",
    "ALTER TABLE t ALTER COLUMN a TYPE text USING a::text",
    "ALTER TABLE t ALTER COLUMN a SET NOT NULL",
    "ALTER TABLE t ALTER COLUMN nn DROP NOT NULL",
    "ALTER TABLE t ALTER COLUMN a SET DEFAULT 0",
    "ALTER TABLE t DROP COLUMN b",
    "ALTER TABLE t ADD CONSTRAINT t_a_pos CHECK (a > 0)",
    "ALTER TABLE t ADD CONSTRAINT t_a_pos CHECK (a > 0) NOT VALID",
    "ALTER TABLE t ADD CONSTRAINT t_a_fk FOREIGN KEY (a) REFERENCES u (id)",
    "ALTER TABLE t ADD CONSTRAINT t_a_fk FOREIGN KEY (a) REFERENCES u (id) NOT VALID",
    "ALTER TABLE t ADD CONSTRAINT t_b_key UNIQUE (b)",
    "ALTER TABLE t ADD CONSTRAINT t_nn_uniq UNIQUE USING INDEX t_nn_key",
    "ALTER TABLE t ADD CONSTRAINT t_excl EXCLUDE USING btree (b WITH =)",
    "ALTER TABLE u ADD CONSTRAINT u_id_pos CHECK (id > 0), "
    "ADD CONSTRAINT u_id_small CHECK (id < 10000)",
    "ALTER TABLE t DROP CONSTRAINT t_pkey",
    "ALTER TABLE t ALTER COLUMN a SET STATISTICS 500",
    "ALTER TABLE t SET (fillfactor = 70)",
    "ALTER TABLE t CLUSTER ON t_a_idx",
    "ALTER TABLE t DISABLE TRIGGER t_touch",
    "ALTER TABLE t SET UNLOGGED",
    "ALTER TABLE t RENAME COLUMN b TO b2",
    "ALTER TABLE t RENAME TO t_renamed",
    "ALTER TABLE m ATTACH PARTITION m_2 FOR VALUES FROM (100) TO (200)",
    "ALTER TABLE m DETACH PARTITION m_1",
    "CREATE TABLE m_3 PARTITION OF m FOR VALUES FROM (200) TO (300)",
    "ALTER TABLE t ADD CONSTRAINT t_a_nn NOT NULL a",
    "CREATE INDEX t_b_idx ON t (b)",
    "CREATE UNIQUE INDEX t_id_b ON t (id, b)",
    "DROP INDEX t_a_idx",
    "REINDEX TABLE t",
    "REINDEX INDEX t_a_idx",
    "CREATE TRIGGER t_touch2 BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION touch()",
    "LOCK TABLE t IN SHARE MODE",
    "LOCK TABLE t",
    "CLUSTER t USING t_a_idx",
    "REFRESH MATERIALIZED VIEW mv",
    "UPDATE t SET a = a + 1",
    "DELETE FROM t WHERE a < 10",
    "DROP TABLE t CASCADE",
    "DROP TABLE u CASCADE",
    "TRUNCATE m_2",
]


@pytest.fixture(scope="module")
def oracle_url(pg_cluster: LocalCluster) -> Iterator[str]:
    name = scratch_name("oracle")
    url = pg_cluster.create_database(name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SETUP)
    yield url
    pg_cluster.drop_database(name)


def _relations(conn: psycopg.Connection[Any]) -> dict[int, tuple[str, int]]:
    rows = conn.execute(
        "SELECT c.oid, c.relname, c.relfilenode FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'"
    ).fetchall()
    return {oid: (name, filenode) for oid, name, filenode in rows}


def _held(conn: psycopg.Connection[Any]) -> dict[int, Lock]:
    rows = conn.execute(
        "SELECT relation, mode FROM pg_locks WHERE pid = pg_backend_pid() "
        "AND locktype = 'relation' AND relation IS NOT NULL"
    ).fetchall()
    by_mode = {lock.pg_mode: lock for lock in Lock}
    held: dict[int, Lock] = {}
    for oid, mode in rows:
        level = by_mode[mode]
        held[oid] = max(held.get(oid, level), level)
    return held


@pytest.mark.parametrize("statement", CASES)
def test_lock_and_rewrite_claims_match_the_server(
    oracle_url: str, statement: str
) -> None:
    with psycopg.connect(oracle_url, autocommit=True) as conn:
        if needs_pg18(statement) and conn.info.server_version < 180000:
            pytest.skip("named NOT NULL constraints are new in PostgreSQL 18")
        catalog = LiveCatalog(conn)
        linter = Linter(LintConfig(Settings(catalog.major_version)), Schema(catalog))
        linter.schema.begin_migration()
        script = Script(Path("oracle.sql"), statement + ";")
        report = linter.lint_script(script, "up")
        claims = {c.relation: c for c in report.statements[0].locks}
        assert claims, f"the lint claims no lock for {statement}"

        before = _relations(conn)
        by_name = {name: oid for oid, (name, _) in before.items()}
        conn.execute("BEGIN")
        try:
            conn.execute(statement)
            held = _held(conn)
            after = {
                oid: conn.execute(
                    "SELECT relfilenode FROM pg_class WHERE oid = %s", [oid]
                ).fetchone()
                for oid in before
            }
        finally:
            conn.execute("ROLLBACK")

    for relation, claim in claims.items():
        if relation not in by_name:
            continue  # the statement creates it
        oid = by_name[relation]
        assert held.get(oid) is claim.lock, (
            f"{statement}: the lint says {claim.lock.label} on {relation}, "
            f"the server holds {held.get(oid)}"
        )
        new_file = after[oid] is not None and after[oid][0] != before[oid][1]
        if not statement.startswith(("DROP TABLE", "TRUNCATE")):
            assert new_file is claim.rewrite, (
                f"{statement}: the lint says rewrite={claim.rewrite} for {relation}, "
                f"the server {'did' if new_file else 'did not'} rewrite it"
            )
    for oid, level in held.items():
        name = before.get(oid, ("", 0))[0]
        if name in ("t", "u", "m", "m_1", "m_2", "mv") and level >= Lock.SHARE:
            assert name in claims, f"{statement}: {level.label} on {name} not claimed"
