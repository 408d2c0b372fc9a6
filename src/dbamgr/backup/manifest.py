"""Backup manifests: reading them, and checking a backup's files against one.

PostgreSQL 18's pg_verifybackup reads tar-format backups; for older versions
dbamgr reads the tar files itself and compares sizes and SHA-256 checksums
(base backups are then taken with ``--manifest-checksums=SHA256``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dbamgr.backup.compress import open_tar
from dbamgr.backup.errors import BackupError
from dbamgr.backup.progress import ProgressCallback, report, run_program
from dbamgr.backup.walnames import parse_lsn
from dbamgr.server.binaries import PgBinaries

logger = logging.getLogger(__name__)

MANIFEST = "backup_manifest"
PG_VERIFYBACKUP_TAR_MAJOR = 18


@dataclass(frozen=True)
class WalRange:
    """The WAL a backup needs to become consistent."""

    tli: int
    start_lsn: int
    end_lsn: int


@dataclass
class Manifest:
    """What a backup manifest says."""

    files: dict[str, dict[str, Any]]
    wal_ranges: list[WalRange]
    system_identifier: int | None

    @property
    def total_size(self) -> int:
        return sum(int(entry.get("Size", 0)) for entry in self.files.values())


def read_manifest(path: Path) -> Manifest:
    """Read a ``backup_manifest`` file."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BackupError(f"cannot read the manifest {path}: {exc}") from exc
    files = {entry["Path"]: entry for entry in data.get("Files", [])}
    ranges = [
        WalRange(
            int(item["Timeline"]),
            parse_lsn(item["Start-LSN"]),
            parse_lsn(item["End-LSN"]),
        )
        for item in data.get("WAL-Ranges", [])
    ]
    sysid = data.get("System-Identifier")
    return Manifest(files, ranges, int(sysid) if sysid is not None else None)


def tar_files(directory: Path) -> list[Path]:
    """The tar files of a backup: base first, then tablespaces, then pg_wal."""
    tars = sorted(p for p in directory.iterdir() if ".tar" in p.name)
    base = [p for p in tars if p.name.startswith("base.tar")]
    wal = [p for p in tars if p.name.startswith("pg_wal.tar")]
    return base + [p for p in tars if p not in base and p not in wal] + wal


def verify_files(
    directory: Path,
    binaries: PgBinaries,
    *,
    on_progress: ProgressCallback | None = None,
) -> list[str]:
    """Check a tar-format backup in *directory* against its manifest; return
    the problems found (empty when every file matches)."""
    if binaries.major >= PG_VERIFYBACKUP_TAR_MAJOR:
        try:
            run_program(
                [
                    binaries.path("pg_verifybackup"),
                    "--format=tar",
                    "--no-parse-wal",
                    "--progress",
                    directory,
                ],
                step="verifying files",
                on_progress=on_progress,
            )
        except BackupError as exc:
            return [exc.message]
        return []
    return _verify_in_python(directory, on_progress)


def _verify_in_python(
    directory: Path, on_progress: ProgressCallback | None
) -> list[str]:
    manifest = read_manifest(directory / MANIFEST)
    expected = dict(manifest.files)
    problems: list[str] = []
    total = manifest.total_size
    done = 0
    for tar_path in tar_files(directory):
        if tar_path.name.startswith("pg_wal.tar"):
            continue
        stem = tar_path.name.split(".tar", 1)[0]
        prefix = "" if stem == "base" else f"pg_tblspc/{stem}/"
        try:
            with open_tar(tar_path) as archive:
                for member in archive:
                    if not member.isfile():
                        continue
                    name = prefix + member.name.removeprefix("./")
                    handle = archive.extractfile(member)
                    if handle is None:
                        continue
                    digest = hashlib.sha256()
                    size = 0
                    while chunk := handle.read(1 << 20):
                        digest.update(chunk)
                        size += len(chunk)
                    done += size
                    report(on_progress, "verifying files", done // 1024, total // 1024)
                    entry = expected.pop(name, None)
                    if entry is None:
                        problems.append(
                            f'"{name}" is in the backup but not in the manifest'
                        )
                    elif int(entry["Size"]) != size:
                        expected_size = entry["Size"]
                        problems.append(
                            f'"{name}" has {size} bytes, the manifest says '
                            f"{expected_size}"
                        )
                    elif entry.get("Checksum-Algorithm") == "SHA256" and (
                        entry["Checksum"] != digest.hexdigest()
                    ):
                        problems.append(f'"{name}" has a checksum mismatch')
        except BackupError as exc:
            problems.append(exc.message)
        except Exception as exc:  # a damaged archive surfaces as many types
            problems.append(f"cannot read {tar_path.name}: {exc}")
    for name in sorted(expected):
        problems.append(f'"{name}" is in the manifest but not in the backup')
    return problems


def file_checksums(directory: Path) -> dict[str, dict[str, Any]]:
    """Size and SHA-256 of each file the backup stores (for the catalog), by
    path relative to *directory*."""
    result = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
        result[path.relative_to(directory).as_posix()] = {
            "size": path.stat().st_size,
            "sha256": digest.hexdigest(),
        }
    return result
