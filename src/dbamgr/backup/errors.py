"""The errors of backups, WAL archiving and restores."""

from __future__ import annotations

from dbamgr.errors import DbamgrError, ExitCode


class BackupError(DbamgrError):
    """A backup, restore, verify or drill failed, or cannot run as asked."""

    exit_code = ExitCode.CHECK_FAILED


class RepositoryError(DbamgrError):
    """The backup repository is missing, unreadable or inconsistent."""

    exit_code = ExitCode.USAGE


class BackupNotFound(RepositoryError, LookupError):
    """No backup in the repository has the id asked for, or fits the target."""


class WalNotFound(BackupError, FileNotFoundError):
    """A WAL file asked for is not in the archive (``wal fetch`` exits 1)."""


class WalConflict(BackupError):
    """A WAL file is already archived with different content."""
