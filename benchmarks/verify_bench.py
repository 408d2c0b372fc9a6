"""Benchmark: `dbamgr verify` against applying the same ups once with psql.

Generates a corpus of realistic migrations (tables with foreign keys, columns,
indexes, views, functions, enums, check constraints), each with its exact down,
then, on one throwaway cluster and in one run, times:

- the reference: one ``psql -X -q -1 -v ON_ERROR_STOP=1 -f up.sql`` per migration,
  into a fresh database (a plain apply, no history, no checks);
- ``dbamgr verify --server URL``: for every migration, snapshot, up with the lock
  trace, snapshot, down with the lock trace, snapshot and data check, up again,
  snapshot; on a scratch database it creates and drops itself.

Usage: python benchmarks/verify_bench.py [--count 300] [--repeat 3] [--createdb-role]

Each round times the reference and then verify, and the ratio is taken per
round; the median ratio is compared with the target (exit 1 above it).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from dbamgr.server import temporary_cluster

sys.path.insert(0, str(Path(__file__).parent))
from corpus import psql_apply, write_project

KINDS = 8
TARGET = 3.0


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


def time_verify(work: Path, server_url: str) -> tuple[float, dict[str, Any]]:
    """Run ``dbamgr verify --server URL --json`` as a user would; return its wall
    time and its report."""
    command = [sys.executable, "-m", "dbamgr", "-C", str(work), "verify"]
    command += ["--server", server_url, "--json"]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"verify failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    report: dict[str, Any] = json.loads(done.stdout)
    return seconds, report


def main() -> int:
    """Run the benchmark; exit 1 when the median ratio misses the target."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="rounds of reference then verify; the ratio is taken per round",
    )
    parser.add_argument(
        "--createdb-role",
        action="store_true",
        help="verify as a role that may create databases but is no superuser, "
        "as on a shared CI server: changes are found by scanning the catalogs",
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="dbamgr-bench-"))
    rounds: list[tuple[float, float]] = []
    try:
        ups = write_project(work, args.count, migration_sql)
        with temporary_cluster() as cluster:
            psql = str(cluster.binaries.path("psql"))
            version = cluster.binaries.version
            server_url = cluster.url()
            if args.createdb_role:
                with cluster.connect() as conn:
                    conn.execute("CREATE ROLE bench_creator LOGIN CREATEDB")
                server_url = server_url.replace("//postgres@", "//bench_creator@")
            for index in range(args.repeat):
                # each round: the reference into a fresh database, then verify
                # (which makes and drops its own), so that both see the same
                # moment of a shared machine
                reference_url = cluster.create_database(f"bench_reference_{index}")
                psql_seconds = psql_apply(psql, reference_url, ups)
                verify_seconds, report = time_verify(work, server_url)
                rounds.append((psql_seconds, verify_seconds))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    verified = sum(1 for m in report["migrations"] if m["status"] == "passed")
    print(f"PostgreSQL {version}, {args.count} migrations, {os.cpu_count()} CPUs")
    reads = report["snapshot_reads"]
    print(f"changes found by {report['changes_found_by']}; snapshot reads {reads}")
    print("round   psql apply   dbamgr verify   ratio")
    for index, (psql_seconds, verify_seconds) in enumerate(rounds, start=1):
        print(
            f"{index:5d} {psql_seconds:10.2f} s {verify_seconds:13.2f} s "
            f"{verify_seconds / psql_seconds:7.2f}"
        )
    ratios = sorted(v / p for p, v in rounds)
    median = statistics.median(ratios)
    print(
        f"verified {verified} of {args.count}; median ratio verify/apply {median:.2f} "
        f"(range {ratios[0]:.2f}-{ratios[-1]:.2f}; target <= {TARGET})"
    )
    return 0 if median <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
