"""What the lint reports: severities, lock levels, rules, findings, reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from dbamgr.errors import UsageError


class Severity(IntEnum):
    """How bad a finding is; ``--fail-on`` compares against it."""

    NOTE = 1
    WARNING = 2
    ERROR = 3

    @property
    def label(self) -> str:
        """The severity as a word: ``note``, ``warning``, ``error``."""
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        """Read ``note``, ``warning`` or ``error``."""
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise UsageError(
                f'unknown severity "{text}"', hint="use note, warning or error"
            ) from None


class Lock(IntEnum):
    """PostgreSQL's table lock modes, weakest first."""

    ACCESS_SHARE = 1
    ROW_SHARE = 2
    ROW_EXCLUSIVE = 3
    SHARE_UPDATE_EXCLUSIVE = 4
    SHARE = 5
    SHARE_ROW_EXCLUSIVE = 6
    EXCLUSIVE = 7
    ACCESS_EXCLUSIVE = 8

    @property
    def label(self) -> str:
        """The mode as PostgreSQL's documentation writes it: ``ACCESS EXCLUSIVE``."""
        return self.name.replace("_", " ")

    @property
    def pg_mode(self) -> str:
        """The mode as ``pg_locks.mode`` shows it: ``AccessExclusiveLock``."""
        return "".join(part.title() for part in self.name.split("_")) + "Lock"

    @property
    def blocks_reads(self) -> bool:
        """Whether the mode stops SELECT on the table."""
        return self is Lock.ACCESS_EXCLUSIVE

    @property
    def blocks_writes(self) -> bool:
        """Whether the mode stops INSERT, UPDATE and DELETE on the table."""
        return self >= Lock.SHARE

    @property
    def effect(self) -> str:
        """What the lock stops other sessions from doing, in a few words."""
        if self.blocks_reads:
            return "blocks reads and writes"
        if self.blocks_writes:
            return "blocks writes"
        if self is Lock.SHARE_UPDATE_EXCLUSIVE:
            return "blocks other schema changes and VACUUM"
        return "blocks no reads or writes"


# hazard classes
DATA_LOSS = "data-loss"
LOCK = "lock"
REWRITE = "rewrite"
SCAN = "scan"
INDEX_BUILD = "index-build"
BACKFILL = "backfill"
COMPAT = "compatibility"
TRANSACTION = "transaction"
TYPES = "type"
DESIGN = "design"
DIRECTIVE = "directive"
SYNTAX = "syntax"

HAZARDS = (
    DATA_LOSS,
    LOCK,
    REWRITE,
    SCAN,
    INDEX_BUILD,
    BACKFILL,
    COMPAT,
    TRANSACTION,
    TYPES,
    DESIGN,
    DIRECTIVE,
    SYNTAX,
)
SIZE_AWARE = frozenset({LOCK, REWRITE, SCAN, INDEX_BUILD, BACKFILL, DATA_LOSS})


@dataclass(frozen=True)
class Rule:
    """One check: its id, default severity, hazard class and documentation."""

    id: str
    severity: Severity
    hazard: str
    title: str
    why: str
    alternative: str = ""


@dataclass(frozen=True)
class LockClaim:
    """A lock a statement takes on a relation, and what it does to its storage."""

    relation: str
    lock: Lock
    rewrite: bool = False
    scan: bool = False
    new_relation: bool = False
    """The relation was created earlier in the same migration."""


@dataclass
class Finding:
    """One hazard found in one statement."""

    rule: str
    severity: Severity
    hazard: str
    file: str
    line: int
    column: int
    statement: str
    message: str
    why: str
    alternative: str | None = None
    relation: str | None = None
    migration: str | None = None
    direction: str | None = None
    estimate_seconds: float | None = None
    table_bytes: int | None = None
    table_rows: int | None = None
    suppressed: str | None = None
    """The reason given by an ignore or approve directive, if silenced."""
    approved: str | None = None
    """For data loss: the reason given by the approve directive that covers it."""

    @property
    def location(self) -> str:
        """``file:line:column``."""
        return f"{self.file}:{self.line}:{self.column}"

    @property
    def is_data_loss(self) -> bool:
        """Whether the finding loses data (what the approval gate looks at)."""
        return self.hazard == DATA_LOSS


@dataclass
class StatementReport:
    """One statement as the lint saw it: where, what it locks, what it risks."""

    file: str
    line: int
    column: int
    text: str
    kind: str
    locks: list[LockClaim] = field(default_factory=list)
    in_transaction: bool = True
    estimate_seconds: float | None = None
    findings: list[Finding] = field(default_factory=list)


@dataclass
class ScriptReport:
    """The statements of one up or down file."""

    migration: str
    version: int
    direction: str
    file: str
    in_transaction: bool
    statements: list[StatementReport] = field(default_factory=list)


@dataclass
class LintReport:
    """Everything ``dbamgr lint`` found."""

    pg_version: int
    target: str | None
    scripts: list[ScriptReport] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    suppressed: list[Finding] = field(default_factory=list)
    statements: int = 0
    fail_on: Severity | None = Severity.WARNING

    def counts(self) -> dict[str, int]:
        """How many findings of each severity, worst first."""
        counts = {s.label: 0 for s in sorted(Severity, reverse=True)}
        for finding in self.findings:
            counts[finding.severity.label] += 1
        return counts

    @property
    def failed(self) -> bool:
        """Whether a finding is at or above ``fail_on``."""
        if self.fail_on is None:
            return False
        return any(f.severity >= self.fail_on for f in self.findings)
