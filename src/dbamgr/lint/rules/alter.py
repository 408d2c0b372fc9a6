"""ALTER TABLE: the lock each command takes, and the dispatch to their rules.

The lock levels follow PostgreSQL's ``AlterTableGetLockLevel``; a statement takes
the strongest lock any of its commands needs. The tests check them against a
real server.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

from dbamgr.lint.context import Context, ident
from dbamgr.lint.model import Lock
from dbamgr.lint.nodes import Node, body, range_name
from dbamgr.lint.rules._registry import analyzer
from dbamgr.lint.text import command_spans

_SHARE_UPDATE_EXCLUSIVE = frozenset(
    {
        "AT_SetStatistics",
        "AT_ClusterOn",
        "AT_DropCluster",
        "AT_SetOptions",
        "AT_ResetOptions",
        "AT_SetRelOptions",
        "AT_ResetRelOptions",
        "AT_ValidateConstraint",
        "AT_DetachPartitionFinalize",
    }
)
_SHARE_ROW_EXCLUSIVE = frozenset(
    {
        "AT_EnableTrig",
        "AT_EnableAlwaysTrig",
        "AT_EnableReplicaTrig",
        "AT_EnableTrigAll",
        "AT_EnableTrigUser",
        "AT_DisableTrig",
        "AT_DisableTrigAll",
        "AT_DisableTrigUser",
    }
)


def lock_level(cmd: Node, pg_version: int) -> Lock:
    """The lock one ALTER TABLE command takes on its table."""
    subtype = cmd.get("subtype", "")
    if subtype in _SHARE_UPDATE_EXCLUSIVE:
        return Lock.SHARE_UPDATE_EXCLUSIVE
    if subtype in _SHARE_ROW_EXCLUSIVE:
        return Lock.SHARE_ROW_EXCLUSIVE
    if subtype == "AT_AttachPartition" and pg_version >= 12:
        return Lock.SHARE_UPDATE_EXCLUSIVE
    if subtype == "AT_DetachPartition":
        concurrent = body(cmd.get("def", {})).get("concurrent", False)
        return Lock.SHARE_UPDATE_EXCLUSIVE if concurrent else Lock.ACCESS_EXCLUSIVE
    if subtype == "AT_AddConstraint":
        constraint = body(cmd.get("def", {}))
        if constraint.get("contype") == "CONSTR_FOREIGN":
            return Lock.SHARE_ROW_EXCLUSIVE
    return Lock.ACCESS_EXCLUSIVE


@dataclass
class Command:
    """One command of an ALTER TABLE, with what its rules need to know."""

    ctx: Context
    relation: str
    node: Node
    index: int
    statement: Node
    new: bool
    siblings: int = field(default=1)

    @property
    def subtype(self) -> str:
        """The command type, e.g. ``AT_AddColumn``."""
        return str(self.node.get("subtype", ""))

    @property
    def definition(self) -> Node:
        """The command's definition node (column, constraint...)."""
        return body(self.node.get("def", {}))

    @property
    def table(self) -> str:
        """The relation as SQL."""
        return ident(self.relation)

    @property
    def short_name(self) -> str:
        """The table name without its schema."""
        return self.relation.rpartition(".")[2]

    @cached_property
    def text(self) -> str | None:
        """This command's own text (e.g. ``ADD COLUMN x int``), when it can be cut."""
        location = self.statement.get("relation", {}).get("location", -1)
        spans = command_spans(self.ctx.text, location)
        if len(spans) != self.siblings:
            return None
        start, end = spans[self.index]
        return self.ctx.text[start:end].strip()

    def alter(self, *commands: str) -> str:
        """``ALTER TABLE <this table> <command>`` for each command."""
        return "\n".join(f"ALTER TABLE {self.table} {c};" for c in commands)


Handler = Callable[[Command], None]
HANDLERS: dict[str, list[Handler]] = {}


def handles(*subtypes: str) -> Callable[[Handler], Handler]:
    """Register a handler for the given ALTER TABLE command types."""

    def register(func: Handler) -> Handler:
        for subtype in subtypes:
            HANDLERS.setdefault(subtype, []).append(func)
        return func

    return register


@analyzer("AlterTableStmt")
def alter_table(ctx: Context, stmt: Node) -> None:
    """Take each command's lock and run the rules of its type."""
    relation = range_name(stmt.get("relation"))
    new = ctx.is_new(relation)
    cmds = [body(c) for c in stmt.get("cmds") or []]
    for index, cmd in enumerate(cmds):
        ctx.lock(relation, lock_level(cmd, ctx.pg))
        command = Command(ctx, relation, cmd, index, stmt, new, len(cmds))
        for handler in HANDLERS.get(command.subtype, ()):
            handler(command)
