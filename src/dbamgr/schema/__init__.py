"""Schema snapshots and diffs.

>>> snapshot = take_snapshot(conn)          # one catalog query
>>> diff = diff_snapshots(before, after)    # object, attribute, before → after
>>> print(diff.render())
"""

from dbamgr.schema.diff import Change, SchemaDiff, diff_snapshots
from dbamgr.schema.snapshot import Snapshot, qualify, split_qualified, take_snapshot
from dbamgr.schema.sources import resolve_source, snapshot_migrations, snapshot_url

__all__ = [
    "Change",
    "SchemaDiff",
    "Snapshot",
    "diff_snapshots",
    "qualify",
    "resolve_source",
    "snapshot_migrations",
    "snapshot_url",
    "split_qualified",
    "take_snapshot",
]
