"""``dbamgr wal push`` and ``dbamgr wal fetch``, started quickly.

PostgreSQL runs archive_command once per WAL segment, so its start-up time bounds
how fast WAL can be archived. ``python -m dbamgr wal …`` comes here without
loading the rest of the command line interface; ``dbamgr wal …`` from the
console script ends up in the same functions.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from dbamgr.backup.errors import WalNotFound
from dbamgr.errors import DbamgrError

logger = logging.getLogger(__name__)

# PostgreSQL ends recovery normally when restore_command fails, unless its exit
# status is above 125 ("command not found"), which aborts recovery instead: a
# broken archive must never look like the end of the WAL.
FETCH_ERROR_EXIT = 126


def _repository_path(repo: str | None) -> Path:
    if repo:
        return Path(repo)
    from dbamgr.config import find_project

    return find_project().backup_repository


def push(source: str, name: str, *, repo: str | None, compression: str) -> int:
    """Archive one WAL file; return the exit code."""
    from dbamgr.backup.repository import open_repository
    from dbamgr.backup.wal import push_wal

    try:
        repository = open_repository(_repository_path(repo))
        push_wal(repository, Path(source), name, compression=compression)
    except DbamgrError as exc:
        print(f"dbamgr wal push: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        print(f"dbamgr wal push: error: {exc}", file=sys.stderr)
        return 1
    return 0


def fetch(name: str, destination: str, *, repo: str | None) -> int:
    """Restore one WAL file; return 0, 1 when it is not archived, or 126."""
    from dbamgr.backup.repository import open_repository
    from dbamgr.backup.wal import fetch_wal

    try:
        repository = open_repository(_repository_path(repo))
        fetch_wal(repository, name, Path(destination))
    except WalNotFound:
        return 1
    except (DbamgrError, OSError) as exc:
        print(f"dbamgr wal fetch: error: {exc}", file=sys.stderr)
        return FETCH_ERROR_EXIT
    return 0


def main(argv: list[str]) -> int:
    """Parse ``wal push|fetch`` arguments (without the leading ``wal``)."""
    parser = argparse.ArgumentParser(prog="dbamgr wal")
    commands = parser.add_subparsers(dest="command", required=True)
    push_parser = commands.add_parser("push")
    push_parser.add_argument("--repo")
    push_parser.add_argument(
        "--compress", default="none", choices=["none", "zstd", "gzip"]
    )
    push_parser.add_argument("path")
    push_parser.add_argument("name")
    fetch_parser = commands.add_parser("fetch")
    fetch_parser.add_argument("--repo")
    fetch_parser.add_argument("name")
    fetch_parser.add_argument("path")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="dbamgr: %(message)s")
    if args.command == "push":
        return push(args.path, args.name, repo=args.repo, compression=args.compress)
    return fetch(args.name, args.path, repo=args.repo)
