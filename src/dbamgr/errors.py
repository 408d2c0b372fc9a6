"""The family of errors dbamgr raises.

Every error dbamgr raises on purpose is a :class:`DbamgrError`. Each class carries
an ``exit_code`` that the CLI uses, and the facts of the failure as attributes, so
that a caller can act on them without parsing messages. Some classes also inherit a
builtin (``ValueError``, ``LookupError``) where that is what they are.
"""

from __future__ import annotations

from typing import Any


class ExitCode:
    """The documented exit codes of the ``dbamgr`` command."""

    OK = 0
    CHECK_FAILED = 1
    USAGE = 2
    UNREACHABLE = 3
    LOCKED = 4
    # the output pipe closed early (`dbamgr … | head`): 128 + SIGPIPE, as a
    # Unix tool ended by it
    PIPE_CLOSED = 141


class DbamgrError(Exception):
    """Base class of the errors dbamgr raises on purpose.

    ``hint`` tells the user what to do about it; ``context`` holds the facts of the
    failure (names, paths, versions) as plain values, for JSON output and logs.
    """

    exit_code: int = ExitCode.CHECK_FAILED

    def __init__(
        self, message: str, *, hint: str | None = None, **context: Any
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.context: dict[str, Any] = context

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}: {self.hint}"
        return self.message


class ConfigError(DbamgrError, ValueError):
    """The project configuration is missing, malformed or inconsistent."""

    exit_code = ExitCode.USAGE


class UsageError(DbamgrError, ValueError):
    """A command was called with arguments that cannot work together."""

    exit_code = ExitCode.USAGE


class ServerError(DbamgrError):
    """A local PostgreSQL server could not be created, started or stopped."""

    exit_code = ExitCode.UNREACHABLE


class DatabaseUnreachable(DbamgrError, ConnectionError):
    """No connection could be made to the target database."""

    exit_code = ExitCode.UNREACHABLE


class SourceError(DbamgrError, ValueError):
    """The migration files cannot be read as a consistent set of migrations."""

    exit_code = ExitCode.USAGE


class MigrationError(DbamgrError):
    """A migration failed, or cannot be run in the current state."""

    exit_code = ExitCode.CHECK_FAILED


class LockTimeout(DbamgrError):
    """Another runner held the migration lock for longer than we would wait."""

    exit_code = ExitCode.LOCKED
