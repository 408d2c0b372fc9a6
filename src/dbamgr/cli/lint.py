"""The review commands: lint and plan."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.markdown import Markdown
from rich.table import Table

from dbamgr import lint as lint_api
from dbamgr.cli._context import AppContext, json_option, pass_app
from dbamgr.cli._output import console, emit_json, err_console, styled
from dbamgr.lint.formats import plan_json, rule_json
from dbamgr.lint.markdown import human_bytes, human_seconds
from dbamgr.target import Target, resolve_target

_STYLE = {"error": "bold red", "warning": "yellow", "note": "cyan"}

env_option = click.option(
    "--env",
    "env",
    metavar="NAME",
    help="Read table sizes, types and the server version from this environment.",
)
pg_version_option = click.option(
    "--pg-version",
    type=click.IntRange(10, 99),
    metavar="MAJOR",
    help="Judge for this PostgreSQL major version (default: the target's server, "
    "else [lint] pg_version, else the parser's).",
)


def _target(app: AppContext, env: str | None) -> Target | None:
    name = env or app.env
    if name is None:
        return None
    return resolve_target(app.project, name, start_local=False)


def _render_rules() -> None:
    table = Table(box=None, pad_edge=False)
    for column in ("rule", "severity", "hazard", "what"):
        table.add_column(column)
    for rule in sorted(lint_api.RULES.values(), key=lambda r: (r.hazard, r.id)):
        style = _STYLE[rule.severity.label]
        table.add_row(
            rule.id, styled((rule.severity.label, style)), rule.hazard, rule.title
        )
    console.print(table)


def _render_finding(finding: lint_api.Finding, show_why: bool) -> None:
    style = _STYLE[finding.severity.label]
    console.print(
        styled(
            (finding.location, "bold"),
            "  ",
            (finding.severity.label, style),
            "  ",
            (finding.rule, "bold"),
        ),
        soft_wrap=True,
    )
    console.print(f"  {finding.message}", soft_wrap=True)
    if finding.estimate_seconds is not None:
        seconds = human_seconds(finding.estimate_seconds)
        console.print(
            f"  estimated {seconds} on {finding.table_rows or 0:,} rows, "
            f"{human_bytes(finding.table_bytes)}",
            style="dim",
        )
    if show_why:
        console.print(f"  why: {finding.why}", style="dim", soft_wrap=True)
    if finding.alternative:
        console.print(styled("  ", ("safer:", "green")))
        indented = "\n".join(f"    {line}" for line in finding.alternative.splitlines())
        console.print(indented, style="green", soft_wrap=True)


def _render_report(report: lint_api.LintReport, show_suppressed: bool) -> None:
    for finding in report.findings:
        _render_finding(finding, show_why=True)
        console.print()
    if show_suppressed:
        for finding in report.suppressed:
            console.print(
                f"{finding.location}  {finding.rule}  ({finding.suppressed})",
                style="dim",
                soft_wrap=True,
            )
    counts = report.counts()
    summary = ", ".join(f"{n} {label}(s)" for label, n in counts.items())
    where = f" on {report.target}" if report.target else ""
    console.print(
        f"{summary} in {report.statements} statement(s), judged as PostgreSQL "
        f"{report.pg_version}{where}"
        + (f"; {len(report.suppressed)} suppressed" if report.suppressed else "")
    )


@click.command()
@click.argument(
    "paths",
    nargs=-1,
    type=click.Path(exists=True, path_type=Path),
)
@env_option
@pg_version_option
@click.option(
    "--fail-on",
    type=click.Choice(["note", "warning", "error", "never"]),
    help="Exit with 1 when a finding is at least this severe (default: [lint] "
    "fail_on, else warning).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["human", "json", "sarif", "github"]),
    default="human",
    help="Output format.",
)
@click.option("--show-suppressed", is_flag=True, help="List ignored findings too.")
@click.option("--rules", "list_rules", is_flag=True, help="List the rules and exit.")
@json_option
@pass_app
def lint(
    app: AppContext,
    *,
    paths: tuple[Path, ...],
    env: str | None,
    pg_version: int | None,
    fail_on: str | None,
    fmt: str,
    show_suppressed: bool,
    list_rules: bool,
    as_json: bool,
) -> None:
    """Check every migration for lock, rewrite, data-loss and other hazards.

    Lints every up and down of the project, or the SQL files given. With --env,
    live table sizes decide severities and estimated durations.
    """
    if list_rules:
        rules = sorted(lint_api.RULES.values(), key=lambda r: r.id)
        if as_json or fmt == "json":
            emit_json([rule_json(r) for r in rules])
        else:
            _render_rules()
        return
    report = lint_api.lint_project(
        app.project,
        _target(app, env),
        pg_version=pg_version,
        fail_on=fail_on,
        paths=paths,
    )
    if as_json or fmt == "json":
        emit_json(lint_api.report_json(report))
    elif fmt == "sarif":
        emit_json(lint_api.report_sarif(report))
    elif fmt == "github":
        click.echo(lint_api.report_github(report), nl=False)
    else:
        _render_report(report, show_suppressed)
    if report.failed:
        sys.exit(1)


@click.command()
@env_option
@pg_version_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["human", "markdown", "json"]),
    default="human",
    help="Output format: markdown writes a plan document for a change review.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the plan to this file instead of standard output.",
)
@json_option
@pass_app
def plan(
    app: AppContext,
    *,
    env: str | None,
    pg_version: int | None,
    fmt: str,
    output: Path | None,
    as_json: bool,
) -> None:
    """Review the pending migrations: locks, rewrites, risks and durations.

    Exits with 1 when the verdict is "blocked".
    """
    name = env or app.env
    target = resolve_target(app.project, name) if name else app.target()
    result = lint_api.plan_changes(app.project, target, pg_version=pg_version)
    if as_json or fmt == "json":
        emit_json(plan_json(result))
    else:
        text = lint_api.render_markdown(result)
        if output is not None:
            output.write_text(text)
            err_console.print(f"wrote {output}")
        elif fmt == "markdown" or not console.is_terminal:
            # rendered, a document is laid out to the width (headings centred,
            # paragraphs wrapped): what is not a terminal gets its source whole
            click.echo(text, nl=False)
        else:
            console.print(Markdown(text))
    if result.verdict == "blocked":
        sys.exit(1)
