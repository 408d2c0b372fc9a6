"""``dbamgr schema dump`` and ``dbamgr schema diff``."""

from __future__ import annotations

import sys
from typing import Any

import click

from dbamgr.cli._context import AppContext, json_option, pass_app, server_option
from dbamgr.cli._output import console, emit_json, styled
from dbamgr.errors import ConfigError
from dbamgr.schema import diff_snapshots, resolve_source, snapshot_url
from dbamgr.schema.diff import SINGULAR, describe_column
from dbamgr.schema.snapshot import Snapshot


@click.group()
def schema() -> None:
    """Read, print and compare database schemas."""


# a view's query is shown on one line, cut to this many characters
_QUERY_WIDTH = 100


def render_snapshot(snapshot: Snapshot) -> None:
    """Print a snapshot as a readable outline."""
    for kind, objects in snapshot.to_dict()["objects"].items():
        if not objects:
            continue
        console.print(styled((kind, "bold"), f" ({len(objects)})"))
        for name, attributes in sorted(objects.items()):
            if not isinstance(attributes, dict):
                console.print(f"  {name}")
                continue
            label = attributes.get("kind", "")
            summary = _type_summary(attributes) if kind == "types" else ""
            console.print(
                styled(
                    f"  {name}",
                    (f"  {label}" if label else "", "dim"),
                    f" {summary}" if summary else "",
                ),
                soft_wrap=True,
            )
            if kind in ("tables", "views"):
                _render_relation(attributes)


def _render_relation(attributes: dict[str, Any]) -> None:
    """The lines under a table or view: what it is built from, its row-level
    security, columns, then constraints, indexes, triggers and policies."""
    lines = []
    if attributes.get("definition"):
        lines.append(f"as {_one_line(attributes['definition'])}")
    if attributes.get("partition_key"):
        lines.append(f"partition by {attributes['partition_key']}")
    if attributes.get("partition_of"):
        bound = attributes.get("partition_bound") or ""
        lines.append(f"partition of {attributes['partition_of']} {bound}".rstrip())
    security = _row_security(attributes)
    if security:
        lines.append(security)
    columns = sorted(
        attributes["columns"].items(), key=lambda item: item[1]["position"]
    )
    lines += [f"{name} {describe_column(column)}" for name, column in columns]
    for line in lines:
        console.print(f"    {line}", soft_wrap=True)
    for part in ("constraints", "indexes", "triggers", "policies"):
        for part_name, value in sorted(attributes[part].items()):
            if part == "policies":
                detail = _policy(value)
            else:
                detail = value.get("definition") or value.get("command") or ""
            console.print(
                styled("    ", (SINGULAR[part], "dim"), f" {part_name}: {detail}"),
                soft_wrap=True,
            )


def _type_summary(attributes: dict[str, Any]) -> str:
    """An enum's labels, a composite's attributes, a domain's base and checks."""
    if attributes.get("kind") == "enum":
        labels = attributes.get("labels") or []
        return "(" + ", ".join(_literal(label) for label in labels) + ")"
    if attributes.get("kind") == "composite":
        return "(" + ", ".join(attributes.get("attributes") or []) + ")"
    if attributes.get("kind") == "domain":
        parts = [str(attributes.get("base_type") or "")]
        if attributes.get("not_null"):
            parts.append("not null")
        if attributes.get("default") is not None:
            parts.append(f"default {attributes['default']}")
        parts += [
            check for _, check in sorted((attributes.get("checks") or {}).items())
        ]
        return " ".join(part for part in parts if part)
    return ""


def _row_security(attributes: dict[str, Any]) -> str:
    """``row level security enabled`` (``, forced``); disabled is said only when
    the relation has policies, which then apply to no one."""
    if attributes.get("rls"):
        forced = ", forced" if attributes.get("rls_forced") else ""
        return f"row level security enabled{forced}"
    if attributes.get("policies"):
        return "row level security disabled: its policies are not applied"
    return ""


def _policy(policy: dict[str, Any]) -> str:
    """A policy in short: ``SELECT restrictive TO app USING (…) WITH CHECK (…)``."""
    clauses = [str(policy.get("command") or "ALL")]
    if policy.get("permissive") is False:
        clauses.append("restrictive")
    roles = policy.get("roles") or []
    if roles and roles != ["public"]:
        clauses.append("TO " + ", ".join(roles))
    if policy.get("using"):
        clauses.append(f"USING {_parenthesized(policy['using'])}")
    if policy.get("check"):
        clauses.append(f"WITH CHECK {_parenthesized(policy['check'])}")
    return " ".join(clauses)


def _parenthesized(expression: str) -> str:
    """*expression* in parentheses, unless the server wrote it in a pair already."""
    depth = 0
    quoted = False
    for index, char in enumerate(expression):
        if char == "'":
            quoted = not quoted
        elif quoted:
            continue
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0 and index < len(expression) - 1:
                break
    else:
        if expression.startswith("(") and expression.endswith(")"):
            return expression
    return f"({expression})"


def _one_line(query: str) -> str:
    """A view's query on one line: the server's line breaks and indentation
    become single spaces, and a long query is cut."""
    text = " ".join(line.strip() for line in query.splitlines() if line.strip())
    text = text.removesuffix(";")
    if len(text) > _QUERY_WIDTH:
        text = text[: _QUERY_WIDTH - 1].rstrip() + "…"
    return text


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@schema.command()
@json_option
@pass_app
def dump(app: AppContext, as_json: bool) -> None:
    """Print the target database's schema (dbamgr's own schema left out)."""
    target = app.target()
    snapshot = snapshot_url(target.url, app.project)
    if as_json:
        sys.stdout.write(snapshot.to_json())
    else:
        console.print(f"target: {target.display}")
        render_snapshot(snapshot)


@schema.command()
@click.argument("before")
@click.argument("after")
@server_option("Build migrations@V sources there.")
@json_option
@pass_app
def diff(
    app: AppContext, before: str, after: str, server_url: str | None, as_json: bool
) -> None:
    """Compare two schemas; exit 1 when they differ.

    BEFORE and AFTER are each a database URL, an environment name (or "local"),
    a snapshot .json file, or migrations@VERSION (the schema the migrations up
    to VERSION build on a scratch database; migrations@latest for all).
    """
    try:
        project = app.project
    except ConfigError:
        project = None
    old, old_label = resolve_source(before, project, server_url=server_url)
    new, new_label = resolve_source(after, project, server_url=server_url)
    result = diff_snapshots(old, new)
    if as_json:
        emit_json({"before": old_label, "after": new_label, "changes": result.changes})
    elif result:
        console.print(f"--- {old_label}\n+++ {new_label}")
        console.print(result.render())
        console.print(f"{len(result)} difference(s)")
    else:
        console.print("the schemas are the same")
    if result:
        sys.exit(1)
