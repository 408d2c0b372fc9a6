"""The approval gate: no data loss on a protected environment without consent.

``dbamgr up`` and ``down`` call :func:`check_approval` with the migrations they
are about to run. On an environment with ``protected = true``, every data-loss
finding must be approved, in the file (``-- dbamgr:approve data-loss <reason>``
above the statement, or ``-- dbamgr:data-loss <reason>`` for the whole file) or
on the command line (``--approve VERSION``); otherwise nothing runs. Elsewhere
the findings are returned as warnings.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence

from dbamgr.errors import MigrationError
from dbamgr.lint.analyze import DOWN, LintConfig, Linter
from dbamgr.lint.model import Finding
from dbamgr.migrations.source import Migration, parse_version
from dbamgr.target import Target

logger = logging.getLogger(__name__)


def data_loss_findings(migration: Migration, direction: str) -> list[Finding]:
    """The data-loss findings of one direction of *migration* (static lint)."""
    linter = Linter(LintConfig())
    scripts = linter.lint_migration(migration)
    wanted = [s for s in scripts if s.direction == direction]
    return [
        finding
        for script in wanted
        for statement in script.statements
        for finding in statement.findings
        if finding.is_data_loss
    ]


def check_approval(
    target: Target,
    migrations: Sequence[Migration],
    direction: str,
    approve: Collection[str] = (),
) -> list[str]:
    """Refuse unapproved data loss on a protected *target*; else warn about it.

    Returns one warning per data-loss statement that will run unapproved on an
    unprotected target. Raises :class:`MigrationError` on a protected one.
    """
    approved_versions = {parse_version(v) for v in approve}
    pending: list[tuple[Migration, Finding]] = []
    for migration in migrations:
        if migration.version in approved_versions:
            continue
        for finding in data_loss_findings(migration, direction):
            if finding.approved is None:
                pending.append((migration, finding))
    if not pending:
        return []
    lines = [
        f"  {f.file}:{f.line}:{f.column} [{f.rule}] {f.message}" for _, f in pending
    ]
    if not target.protected:
        return [
            f"{m.ident}: {f.file}:{f.line}: data loss ({f.rule}): {f.message}"
            for m, f in pending
        ]
    versions = sorted({m.label for m, _ in pending})
    verb = "revert" if direction == DOWN else "apply"
    raise MigrationError(
        f'environment "{target.name}" is protected: {len(pending)} statement(s) '
        f"would lose data without approval:\n" + "\n".join(lines),
        hint="approve each in its file with a comment above it, -- dbamgr:approve "
        "data-loss <reason>, or run again with "
        + " ".join(f"--approve {v}" for v in versions)
        + f" to {verb} them anyway; nothing was run",
        environment=target.name,
        versions=versions,
        statements=[f"{f.file}:{f.line}" for _, f in pending],
    )
