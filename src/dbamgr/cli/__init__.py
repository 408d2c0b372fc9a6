"""The ``dbamgr`` command: a thin layer over the Python API.

Errors become messages and exit codes in one place, :class:`DbamgrGroup`:

==  =========================================================================
0   success
1   a check failed or a migration failed (lint findings, verify mismatch…)
2   usage or configuration error
3   database or server unreachable
4   another runner holds the migration lock
==  =========================================================================
"""

from __future__ import annotations

import difflib
import importlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import click

from dbamgr import __version__
from dbamgr.cli._context import AppContext
from dbamgr.cli._output import err_console, styled, to_jsonable
from dbamgr.errors import DbamgrError, ExitCode
from dbamgr.log import redact, setup_logging, write_error_record

logger = logging.getLogger(__name__)


# command name -> "module:object" in dbamgr.cli; imported only when used,
# so that a quick command does not pay for every other command's imports
LAZY_COMMANDS = {
    "init": "project:init",
    "new": "migrate:new",
    "status": "migrate:status",
    "up": "migrate:up",
    "down": "migrate:down",
    "redo": "migrate:redo",
    "history": "migrate:history",
    "resolve": "migrate:resolve",
    "server": "server:server",
    "schema": "schema:schema",
    "verify": "verify:verify",
    "drift": "verify:drift",
    "lint": "lint:lint",
    "plan": "lint:plan",
    "backup": "backup:backup",
    "wal": "wal:wal",
    "archive": "wal:archive_group",
    "restore": "restore:restore_group",
    "restore-point": "restore:restore_point_command",
    "drill": "drill:drill",
    "heartbeat": "drill:heartbeat",
}


class DbamgrGroup(click.Group):
    """The root group: it loads commands on demand, and turns every failure into
    a message and an exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(LAZY_COMMANDS))

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:
            name = args[0] if args else ""
            close = difflib.get_close_matches(name, self.list_commands(ctx), n=1)
            if close and "No such command" in exc.message:
                raise click.UsageError(
                    f"{exc.message} Did you mean '{close[0]}'?", ctx
                ) from None
            raise

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        where = LAZY_COMMANDS.get(cmd_name)
        if where is not None and cmd_name not in self.commands:
            module_name, _, attribute = where.partition(":")
            module = importlib.import_module(f"dbamgr.cli.{module_name}")
            self.add_command(getattr(module, attribute), cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DbamgrError as exc:
            _report(ctx, exc, exc.exit_code)
        except KeyboardInterrupt:
            err_console.print("interrupted")
            ctx.exit(130)
        except BrokenPipeError:
            # whoever read the output went away (`dbamgr … | head`): stop without
            # a word, as a Unix tool that SIGPIPE ends, and with its status
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            ctx.exit(ExitCode.PIPE_CLOSED)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:
            _report(ctx, exc, ExitCode.CHECK_FAILED)
        return None


def _report(ctx: click.Context, exc: Exception, code: int) -> None:
    app = ctx.ensure_object(AppContext)
    if isinstance(exc, DbamgrError):
        message, hint, context = exc.message, exc.hint, exc.context
    else:
        message = f"unexpected error: {exc!r}"
        hint = "run again with --debug to see where, and report it"
        context = {}
    if app.debug:
        logger.exception("%s", message)
    if app.json:
        payload = {
            "error": {
                "type": type(exc).__name__,
                "message": message,
                "hint": hint,
                "exit_code": code,
                "context": context,
            }
        }
        click.echo(json.dumps(to_jsonable(payload), indent=2, ensure_ascii=False))
    err_console.print(
        styled(("error:", "bold red"), f" {redact(message)}"), soft_wrap=True
    )
    if hint:
        err_console.print(styled(("hint:", "dim"), f" {redact(hint)}"), soft_wrap=True)
    project = app.known_project
    if project is not None:
        try:
            write_error_record(
                project.log_dir,
                command=" ".join(["dbamgr", *sys.argv[1:]]),
                error_type=type(exc).__name__,
                message=message,
                migration=context.get("migration"),
                context=context,
                hint=hint,
            )
        except OSError as log_error:
            logger.warning("could not write the error log: %s", log_error)
    ctx.exit(code)


@click.group(cls=DbamgrGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-C",
    "--project",
    "project_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The project directory (default: found by walking up from here).",
)
@click.option(
    "--env",
    "env",
    envvar="DBAMGR_ENV",
    help="The environment to act on, from [environments.NAME].",
)
@click.option("-v", "--verbose", count=True, help="Say what happens, step by step.")
@click.option("--debug", is_flag=True, help="Log every statement; show tracebacks.")
@click.version_option(__version__, prog_name="dbamgr")
@click.pass_context
def cli(
    ctx: click.Context,
    project_dir: Path | None,
    env: str | None,
    verbose: int,
    debug: bool,
) -> None:
    """An automated database administrator for PostgreSQL.

    dbamgr applies reversible migrations and proves them safe. With no database
    configured it runs a local PostgreSQL of its own under .dbamgr/server/.
    """
    app = ctx.ensure_object(AppContext)
    app.project_dir = project_dir
    app.env = env
    app.debug = debug
    setup_logging(verbose, debug=debug)


def main() -> None:
    """Entry point of the ``dbamgr`` console script."""
    cli(prog_name="dbamgr")
