"""Benchmark: `dbamgr up` against a loop of `psql -1 -f`, and `dbamgr status`.

Generates N small migrations (tables, columns, indexes, foreign keys, views,
functions), then, on one throwaway cluster and in one run:

- applies them with one ``psql -X -q -1 -v ON_ERROR_STOP=1 -f`` per file, into
  one database (the reference: what a shell script around psql does);
- applies them with ``dbamgr up``, into another database (which also records
  every migration in its history tables);
- times ``dbamgr status`` with all N applied (median of several runs).

Usage: python benchmarks/migrate_bench.py [--count 1000] [--status-runs 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dbamgr.server import temporary_cluster

sys.path.insert(0, str(Path(__file__).parent))
from corpus import psql_apply, write_project


def migration_sql(index: int) -> tuple[str, str]:
    """The up and down of migration *index*: a mix of common small changes."""
    table = f"t{index // 5}"
    kind = index % 5
    if kind == 0:
        ref = f"t{index // 5 - 1}" if index >= 5 else None
        fk = f",\n    parent_id bigint REFERENCES {ref} (id)" if ref else ""
        up = (
            f"CREATE TABLE {table} (\n    id bigint GENERATED ALWAYS AS IDENTITY "
            f"PRIMARY KEY,\n    name text NOT NULL,\n    created_at timestamptz NOT "
            f"NULL DEFAULT now(){fk}\n);\n"
        )
        return up, f"DROP TABLE {table};\n"
    if kind == 1:
        return (
            f"ALTER TABLE {table} ADD COLUMN score integer NOT NULL DEFAULT 0;\n",
            f"ALTER TABLE {table} DROP COLUMN score;\n",
        )
    if kind == 2:
        return (
            f"CREATE INDEX {table}_name ON {table} (name);\n",
            f"DROP INDEX {table}_name;\n",
        )
    if kind == 3:
        return (
            f"CREATE VIEW {table}_recent AS SELECT id, name FROM {table} "
            "WHERE created_at > now() - interval '1 day';\n",
            f"DROP VIEW {table}_recent;\n",
        )
    return (
        f"CREATE FUNCTION {table}_count() RETURNS bigint LANGUAGE sql STABLE\n"
        f"    RETURN (SELECT count(*) FROM {table});\n",
        f"DROP FUNCTION {table}_count();\n",
    )


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--status-runs", type=int, default=5)
    args = parser.parse_args()

    dbamgr = [sys.executable, "-m", "dbamgr"]
    work = Path(tempfile.mkdtemp(prefix="dbamgr-bench-"))
    try:
        ups = write_project(work, args.count, migration_sql)
        with temporary_cluster() as cluster:
            psql = str(cluster.binaries.path("psql"))
            psql_url = cluster.create_database("bench_psql")
            dbamgr_url = cluster.create_database("bench_dbamgr")
            env = dict(os.environ, DATABASE_URL=dbamgr_url)

            psql_seconds = psql_apply(psql, psql_url, ups)

            up_seconds = timed([*dbamgr, "-C", str(work), "up"], env)
            status_times = [
                timed([*dbamgr, "-C", str(work), "status"], env)
                for _ in range(args.status_runs)
            ]
            version = cluster.binaries.version
    finally:
        shutil.rmtree(work, ignore_errors=True)

    status_seconds = statistics.median(status_times)
    print(f"PostgreSQL {version}, {args.count} migrations, {os.cpu_count()} CPUs")
    print(f"psql -1 -f loop : {psql_seconds:8.2f} s")
    print(f"dbamgr up       : {up_seconds:8.2f} s")
    print(f"ratio up/psql   : {up_seconds / psql_seconds:8.2f}  (target <= 1.0)")
    print(
        f"dbamgr status   : {status_seconds:8.3f} s  (median of {len(status_times)}; "
        "target < 0.5 s)"
    )


if __name__ == "__main__":
    main()
