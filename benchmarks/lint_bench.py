"""Benchmark: ``dbamgr lint`` over a generated corpus of migrations.

Generates a project whose migrations hold at least ``--statements`` statements
(ups and downs, in the pair layout), lints it with the Python API the way
``dbamgr lint`` does (reading the files included), and reports statements per
second. When the ``squawk`` command is installed (``pip install squawk-cli``, the
``bench`` extra), it lints the same files and the ratio of the times is printed.

    python benchmarks/lint_bench.py [--statements 10000] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dbamgr.config import load_project
from dbamgr.lint import lint_project

TARGET = 5000.0  # statements per second

UP_TEMPLATES = [
    "CREATE TABLE {t}_{i} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
    "name text NOT NULL, email varchar(200), created_at timestamp DEFAULT now(), "
    "data json, owner_id integer REFERENCES {t} (id))",
    "ALTER TABLE {t} ADD COLUMN c{i} bigint",
    "ALTER TABLE {t} ADD COLUMN d{i} timestamptz DEFAULT now()",
    "ALTER TABLE {t} ADD COLUMN u{i} uuid DEFAULT gen_random_uuid()",
    "ALTER TABLE {t} ADD COLUMN r{i} integer NOT NULL",
    "CREATE INDEX {t}_i{i} ON {t} (a{i}, b)",
    "CREATE UNIQUE INDEX {t}_u{i} ON {t} (lower(email)) WHERE deleted_at IS NULL",
    "ALTER TABLE {t} ALTER COLUMN c{i} SET NOT NULL",
    "ALTER TABLE {t} ALTER COLUMN v{i} TYPE varchar(300)",
    "ALTER TABLE {t} ADD CONSTRAINT {t}_c{i} CHECK (c{i} > 0) NOT VALID",
    "ALTER TABLE {t} ADD CONSTRAINT {t}_f{i} FOREIGN KEY (o{i}) REFERENCES owners (id)",
    "ALTER TABLE {t} VALIDATE CONSTRAINT {t}_c{i}",
    "UPDATE {t} SET c{i} = 0 WHERE c{i} IS NULL AND id BETWEEN {i} AND {i} + 1000",
    "INSERT INTO settings (key, value) VALUES ('k{i}', 'v') ON CONFLICT DO NOTHING",
    "COMMENT ON COLUMN {t}.c{i} IS 'counter {i}'",
    "ALTER TABLE {t} RENAME COLUMN x{i} TO y{i}",
    "CREATE OR REPLACE FUNCTION f{i}() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$",
    "CREATE TRIGGER {t}_t{i} BEFORE UPDATE ON {t} FOR EACH ROW EXECUTE FUNCTION f{i}()",
    "GRANT SELECT ON {t} TO reporting",
    "SELECT count(*) FROM {t} WHERE id > {i}",
]
TABLES = ["users", "orders", "payments", "events", "accounts", "invoices"]


def generate(root: Path, statements: int, per_file: int = 25) -> tuple[int, list[Path]]:
    """Write a project with at least *statements* statements; return the count."""
    rng = random.Random(20261203)
    (root / "dbamgr.toml").write_text('[migrations]\ndir = "migrations"\n')
    directory = root / "migrations"
    directory.mkdir()
    written = 0
    files: list[Path] = []
    version = 20260101000000
    while written < statements:
        version += 1
        up_lines = []
        for _ in range(per_file):
            template = rng.choice(UP_TEMPLATES)
            index = rng.randrange(1_000_000)
            up_lines.append(template.format(t=rng.choice(TABLES), i=index) + ";")
        down_lines = [f"ALTER TABLE {rng.choice(TABLES)} DROP COLUMN c{version % 997};"]
        up = directory / f"{version}_change.up.sql"
        down = directory / f"{version}_change.down.sql"
        up.write_text("-- generated\n" + "\n".join(up_lines) + "\n")
        down.write_text("\n".join(down_lines) + "\n")
        files += [up, down]
        written += len(up_lines) + len(down_lines)
    return written, files


def time_dbamgr(root: Path, repeat: int) -> tuple[float, int, int]:
    """Best wall time of *repeat* lints; statements and findings of the last."""
    best = float("inf")
    statements = findings = 0
    for _ in range(repeat):
        start = time.perf_counter()
        report = lint_project(load_project(root))
        best = min(best, time.perf_counter() - start)
        statements = report.statements
        findings = len(report.findings) + len(report.suppressed)
    return best, statements, findings


def time_squawk(squawk: str, files: list[Path], repeat: int) -> float:
    """Best wall time of *repeat* runs of squawk over the same files."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(
            [squawk, "--reporter", "json", *map(str, files)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit 1 when below the target rate."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--statements", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="dbamgr-lint-bench-") as tmp:
        root = Path(tmp)
        generated, files = generate(root, args.statements)
        seconds, statements, findings = time_dbamgr(root, args.repeat)
        rate = statements / seconds
        result: dict[str, object] = {
            "statements": statements,
            "files": len(files),
            "findings": findings,
            "seconds": round(seconds, 3),
            "statements_per_second": round(rate),
            "target": TARGET,
            "meets_target": rate >= TARGET,
        }
        squawk = shutil.which("squawk")
        if squawk is not None:
            squawk_seconds = time_squawk(squawk, files, args.repeat)
            version = subprocess.run(
                [squawk, "--version"], capture_output=True, text=True, check=False
            ).stdout.strip()
            result |= {
                "squawk": version,
                "squawk_seconds": round(squawk_seconds, 3),
                "dbamgr_to_squawk_time_ratio": round(seconds / squawk_seconds, 2),
            }
        assert generated == statements, (generated, statements)

    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:32} {value}")
    return 0 if result["meets_target"] else 1


if __name__ == "__main__":
    sys.exit(main())
