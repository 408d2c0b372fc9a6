"""Benchmark: `dbamgr verify` against applying the same ups once with psql.

Generates a corpus of realistic migrations (tables with foreign keys, columns,
indexes, views, functions, enums, check constraints), each with its exact down,
then, on one throwaway cluster and in one run, times:

- the reference: one ``psql -X -q -1 -v ON_ERROR_STOP=1 -f up.sql`` per migration,
  into a fresh database (a plain apply, no history, no checks);
- ``dbamgr verify --server URL``: for every migration, snapshot, up with the lock
  trace, snapshot, down with the lock trace, snapshot and data check, up again,
  snapshot; on a scratch database it creates and drops itself.

Usage: python benchmarks/verify_bench.py [--count 300]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dbamgr.server import temporary_cluster

sys.path.insert(0, str(Path(__file__).parent))
from corpus import psql_apply, write_project

KINDS = 8


def migration_sql(index: int) -> tuple[str, str]:
    """The up and down of migration *index*; every eighth starts a new table."""
    n = index // KINDS
    table = f"item_{n}"
    kind = index % KINDS
    if kind == 0:
        parent = f"item_{n - 1}" if n else None
        reference = (
            f",\n    parent_id bigint REFERENCES {parent} (id) ON DELETE SET NULL"
            if parent
            else ""
        )
        up = (
            f"CREATE TABLE {table} (\n"
            "    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
            "    name text NOT NULL,\n"
            "    created_at timestamptz NOT NULL DEFAULT now()"
            f"{reference}\n);\n"
        )
        return up, f"DROP TABLE {table};\n"
    if kind == 1:
        return (
            f"ALTER TABLE {table} ADD COLUMN price numeric(10, 2) NOT NULL "
            "DEFAULT 0;\n",
            f"ALTER TABLE {table} DROP COLUMN price;\n",
        )
    if kind == 2:
        return (
            f"CREATE INDEX {table}_name_idx ON {table} (lower(name));\n",
            f"DROP INDEX {table}_name_idx;\n",
        )
    if kind == 3:
        return (
            f"CREATE TYPE {table}_state AS ENUM ('new', 'active', 'gone');\n"
            f"ALTER TABLE {table} ADD COLUMN state {table}_state NOT NULL "
            "DEFAULT 'new';\n",
            f"ALTER TABLE {table} DROP COLUMN state;\nDROP TYPE {table}_state;\n",
        )
    if kind == 4:
        return (
            f"ALTER TABLE {table} ADD CONSTRAINT {table}_price_positive "
            "CHECK (price >= 0);\n",
            f"ALTER TABLE {table} DROP CONSTRAINT {table}_price_positive;\n",
        )
    if kind == 5:
        return (
            f"CREATE VIEW {table}_active AS\n    SELECT id, name, price FROM {table} "
            "WHERE state = 'active';\n",
            f"DROP VIEW {table}_active;\n",
        )
    if kind == 6:
        return (
            f"CREATE FUNCTION {table}_total() RETURNS numeric\n"
            "    LANGUAGE sql STABLE\n"
            f"    RETURN (SELECT coalesce(sum(price), 0) FROM {table});\n",
            f"DROP FUNCTION {table}_total();\n",
        )
    return (
        f"COMMENT ON TABLE {table} IS 'items of batch {n}';\n"
        f"CREATE INDEX {table}_created_idx ON {table} (created_at);\n",
        f"DROP INDEX {table}_created_idx;\nCOMMENT ON TABLE {table} IS NULL;\n",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=300)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="dbamgr-bench-"))
    try:
        ups = write_project(work, args.count, migration_sql)
        with temporary_cluster() as cluster:
            psql = str(cluster.binaries.path("psql"))
            reference_url = cluster.create_database("bench_reference")
            psql_seconds = psql_apply(psql, reference_url, ups)

            command = [sys.executable, "-m", "dbamgr", "-C", str(work), "verify"]
            command += ["--server", cluster.url(), "--json"]
            started = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            verify_seconds = time.perf_counter() - started
            version = cluster.binaries.version
    finally:
        shutil.rmtree(work, ignore_errors=True)

    if done.returncode != 0:
        sys.exit(f"verify failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    report = json.loads(done.stdout)
    verified = sum(1 for m in report["migrations"] if m["status"] == "passed")
    print(f"PostgreSQL {version}, {args.count} migrations, {os.cpu_count()} CPUs")
    print(f"psql apply (one psql -1 -f per up) : {psql_seconds:8.2f} s")
    print(f"dbamgr verify ({verified} verified)      : {verify_seconds:8.2f} s")
    print(
        f"ratio verify/apply                 : {verify_seconds / psql_seconds:8.2f}"
        "  (target <= 3.0)"
    )


if __name__ == "__main__":
    main()
