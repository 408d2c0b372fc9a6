"""``dbamgr plan --format markdown``: a plan document for a change review."""

from __future__ import annotations

from dbamgr.lint.plan import BLOCKED, REVIEW, ChangePlan, PlannedMigration

_VERDICT = {
    "safe": "safe to apply",
    REVIEW: "needs review",
    BLOCKED: "blocked: do not apply as written",
}


def human_bytes(size: int | None) -> str:
    """``1.2 GB`` and the like; ``?`` when unknown."""
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


def human_seconds(seconds: float | None) -> str:
    """``< 1 ms``, ``340 ms``, ``12 s``, ``3.5 min``…"""
    if seconds is None:
        return "?"
    if seconds < 0.001:
        return "< 1 ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"


def _rows(rows: int | None) -> str:
    return "?" if rows is None else f"{rows:,}"


def _risk(plan: ChangePlan) -> list[str]:
    lines = [
        f"- Verdict: **{_VERDICT[plan.verdict]}**",
        f"- Findings: {plan.counts.get('error', 0)} error(s), "
        f"{plan.counts.get('warning', 0)} warning(s), {plan.counts.get('note', 0)} "
        "note(s)",
        f"- Estimated total duration: {human_seconds(plan.estimate_seconds)}",
        f"- Longest time a table blocks reads or writes: "
        f"{human_seconds(plan.blocking_seconds)}",
    ]
    lossy = [m.ident for m in plan.migrations if m.data_loss]
    if lossy:
        lines.append(
            "- Data loss without approval in: " + ", ".join(f"`{m}`" for m in lossy)
        )
    if plan.protected:
        lines.append(f"- `{plan.environment}` is protected: data loss must be approved")
    return lines


def _migration(migration: PlannedMigration) -> list[str]:
    mode = (
        "in one transaction" if migration.in_transaction else "statement by statement"
    )
    estimate = human_seconds(migration.estimate_seconds)
    lines = [
        f"### {migration.ident}",
        "",
        f"`{migration.file}`, {mode}; estimated {estimate}; verdict: "
        f"{_VERDICT[migration.verdict]}",
        "",
        "| line | statement | locks | estimate | findings |",
        "|---:|---|---|---:|---|",
    ]
    for statement in migration.statements:
        first = " ".join(statement.sql.split())
        if len(first) > 70:
            first = first[:67] + "..."
        locks = "<br>".join(
            f"{step.lock} on `{step.relation}`"
            + (" (rewrite)" if step.rewrite else " (scan)" if step.scan else "")
            for step in statement.locks
        )
        findings = "<br>".join(
            f"{f.severity.label} `{f.rule}`" for f in statement.findings
        )
        first = first.replace("|", "\\|")
        lines.append(
            f"| {statement.line} | `{first}` | {locks or '-'} | "
            f"{human_seconds(statement.estimate_seconds)} | {findings or '-'} |"
        )
    details = [f for s in migration.statements for f in s.findings]
    if details:
        lines += ["", "Hazards:", ""]
        for finding in details:
            lines.append(
                f"- **{finding.rule}** (line {finding.line}): {finding.message}"
            )
            if finding.alternative:
                lines += ["", "  ```sql"]
                lines += [f"  {row}" for row in finding.alternative.splitlines()]
                lines += ["  ```"]
    if migration.windows:
        lines += ["", "Lock windows:", ""]
        for window in migration.windows:
            lines.append(
                f"- {window.lock} on `{window.relation}` from line {window.from_line}, "
                f"held about {human_seconds(window.seconds)} ({window.effect})"
            )
    return [*lines, ""]


def _rollback(migration: PlannedMigration) -> list[str]:
    lines = [f"### {migration.ident}", ""]
    if migration.irreversible:
        return [
            *lines,
            f"Irreversible: {migration.irreversible}. Restore from a backup.",
            "",
        ]
    if not migration.rollback:
        return [*lines, "No down script.", ""]
    lines += [
        f"`dbamgr down --to <the version before {migration.version}>` runs "
        f"`{migration.rollback_file}`:",
        "",
        "```sql",
    ]
    lines += [f"{statement};" for statement in migration.rollback]
    return [*lines, "```", ""]


def render_markdown(plan: ChangePlan) -> str:
    """The plan as a Markdown document."""
    lines = [
        f"# Change plan for {plan.environment}",
        "",
        f"Target `{plan.target}`, judged as PostgreSQL {plan.pg_version}; "
        f"{len(plan.migrations)} pending migration(s).",
        "",
        "## Risk assessment",
        "",
        *_risk(plan),
        "",
    ]
    if not plan.migrations:
        return "\n".join([*lines, "Nothing to apply.", ""])
    lines += [
        "## Affected tables",
        "",
        "| table | rows | size | strongest lock | effect | held |",
        "|---|---:|---:|---|---|---:|",
    ]
    for table in plan.tables:
        lines.append(
            f"| `{table.relation}` | {_rows(table.rows)} | "
            f"{human_bytes(table.bytes)} | "
            f"{table.lock} | {table.effect} | {human_seconds(table.seconds_locked)} |"
        )
    lines += ["", "## Downtime estimate", ""]
    lines.append(
        f"Reads or writes of one table wait at most about "
        f"{human_seconds(plan.blocking_seconds)}, plus the time to obtain each lock "
        "(bounded by lock_timeout). Estimates assume ordinary disk throughput."
    )
    lines += ["", "## Migrations", ""]
    for migration in plan.migrations:
        lines += _migration(migration)
    lines += ["## Rollback procedure", "", "Newest first:", ""]
    for migration in reversed(plan.migrations):
        lines += _rollback(migration)
    return "\n".join(lines)
