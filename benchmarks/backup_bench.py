"""Benchmark: dbamgr's base backup and restore against the plain PostgreSQL tools.

Fills a database of about 1 GB with pgbench -i, then times, in one run:

- ``pg_basebackup`` alone (tar format, same compression, WAL streamed, fast
  checkpoint): the plain backup;
- ``dbamgr backup base``: the same pg_basebackup plus manifest verification,
  checksums of the stored files, the backup marker with row counts and the wait
  for the WAL to reach the archive;
- ``tar -x`` of that backup's files into an empty directory: the plain restore;
- ``dbamgr restore`` of the backup (files, recovery settings, fsync).

The ratios are dbamgr's time over the plain tool's (target: at most 1.15). The
result says whether pgBackRest is installed; it is not timed here.

    python benchmarks/backup_bench.py [--scale 70] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from dbamgr.backup.archive import archive_settings, grant_program_access
from dbamgr.backup.base import take_base_backup
from dbamgr.backup.compress import choose_compression
from dbamgr.backup.repository import open_repository
from dbamgr.backup.restore import restore_backup
from dbamgr.backup.target import RestoreTarget
from dbamgr.server import find_binaries, temporary_cluster
from dbamgr.server.process import run


def timed(label: str, func: Any) -> tuple[float, Any]:
    """Run *func*, print and return its wall-clock time."""
    began = time.perf_counter()
    result = func()
    seconds = time.perf_counter() - began
    print(f"  {label:<34} {seconds:8.2f} s", file=sys.stderr)
    return seconds, result


def tree_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def plain_restore(backup_dir: Path, target: Path) -> None:
    """What one does by hand: untar base and WAL into an empty directory."""
    target.mkdir(mode=0o700)
    subprocess.run(
        ["tar", "-xf", str(next(backup_dir.glob("base.tar*"))), "-C", str(target)],
        check=True,
    )
    wal = target / "pg_wal"
    wal.mkdir(exist_ok=True)
    subprocess.run(
        ["tar", "-xf", str(next(backup_dir.glob("pg_wal.tar*"))), "-C", str(wal)],
        check=True,
    )


def main() -> int:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scale", type=int, default=70, help="pgbench scale (70 ≈ 1 GB)"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()

    binaries = find_binaries()
    work = Path(tempfile.mkdtemp(prefix="dbamgr-bench-"))
    results: dict[str, Any] = {"postgresql": binaries.version, "scale": args.scale}
    try:
        repo_path = work / "repo"
        repo = open_repository(repo_path, create=True)
        settings = archive_settings(
            repo_path, compression="none", timeout=60, major=binaries.major
        )
        with temporary_cluster(
            {**settings, "max_wal_size": "4GB", "checkpoint_timeout": "30min"},
            binaries=binaries,
            parent=work,
        ) as cluster:
            grant_program_access(cluster.user)
            print(
                f"PostgreSQL {binaries.version}; filling the database…", file=sys.stderr
            )
            timed(
                "pgbench -i",
                lambda: run(
                    [
                        binaries.path("pgbench"),
                        "-i",
                        "-q",
                        "-s",
                        str(args.scale),
                        cluster.url(),
                    ],
                    user=cluster.user,
                    timeout=3600,
                ),
            )
            with cluster.connect() as conn:
                row = conn.execute("SELECT pg_database_size('postgres')").fetchone()
                conn.execute("CHECKPOINT")
            assert row is not None
            results["database_bytes"] = int(row[0])
            method = choose_compression(binaries, "auto")
            results["compression"] = method

            plain_dir = work / "plain-backup"
            results["plain_backup_s"], _ = timed(
                "pg_basebackup (plain)",
                lambda: run(
                    [
                        binaries.path("pg_basebackup"),
                        "-D",
                        plain_dir,
                        "-Ft",
                        "-X",
                        "stream",
                        "-c",
                        "fast",
                        f"--compress=client-{method}",
                        "-d",
                        cluster.url(),
                    ],
                    timeout=3600,
                ),
            )
            results["dbamgr_backup_s"], info = timed(
                "dbamgr backup base",
                lambda: take_base_backup(
                    repo, cluster.url(), binaries, archive_wait=600
                ),
            )
            results["data_bytes"] = info.data_size
            results["stored_bytes"] = info.size
            results["plain_backup_bytes"] = tree_size(plain_dir)

        backup_dir = repo.data_dir(info.id)
        results["plain_restore_s"], _ = timed(
            "tar -x of the same backup (plain)",
            lambda: plain_restore(backup_dir, work / "plain-restore"),
        )
        shutil.rmtree(work / "plain-restore")
        results["dbamgr_restore_s"], _ = timed(
            "dbamgr restore",
            lambda: restore_backup(
                repo, binaries, work / "restored", RestoreTarget(), backup_id=info.id
            ),
        )

        # pgBackRest is not driven by this benchmark (see benchmarks/README.md);
        # say whether it could be compared on this machine
        pgbackrest = shutil.which("pgbackrest")
        results["pgbackrest"] = (
            "not installed" if pgbackrest is None else f"at {pgbackrest}, not timed"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)

    results["backup_ratio"] = round(
        results["dbamgr_backup_s"] / results["plain_backup_s"], 3
    )
    results["restore_ratio"] = round(
        results["dbamgr_restore_s"] / results["plain_restore_s"], 3
    )
    results["compression_ratio"] = round(
        results["data_bytes"] / results["stored_bytes"], 2
    )
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for key, value in results.items():
            print(f"{key:<22} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
