"""Snapshots of one database that re-read only what changed.

``verify`` takes three snapshots per migration; read whole, their cost grows with
the schema and verify grows with the square of the number of migrations. A
:class:`SnapshotCache` keeps the last snapshot and, after a run of statements,
re-reads only the objects that run may have changed:

- every object the run locked (DDL locks what it alters or drops; the lock trace
  reports relation locks and object locks);
- every relation, function, type, schema or extension whose catalog row was
  written after the run started (a newer ``xmin``: new objects, and the few
  changes that take no lock, such as ``CREATE OR REPLACE FUNCTION``).

When a change could alter how *other* objects print (a rename of a relation,
column, function, type or schema; any change to an existing type), or when the
run's locks are not known exactly (statements outside a transaction), the whole
schema is read again. Tests check the refreshed snapshot against a full one after
each kind of DDL.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from dbamgr.schema.snapshot import GENERIC_PLANS, Snapshot, take_snapshot

logger = logging.getLogger(__name__)

# catalog class of a cached object -> the ONLY_KINDS name the catalog query takes
_ONLY = {
    "rel": "relations",
    "proc": "functions",
    "type": "types",
    "schema": "schemas",
    "ext": "extensions",
}

# Objects whose catalog rows were written at or after a transaction id, and the
# owners of the objects a run locked. Returns (class, oid) pairs; class "unknown"
# means a lock we cannot map, which forces a full read.
_CHANGED = """
WITH ns AS (
    SELECT n.oid FROM pg_namespace n
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
),
-- rows written at or after the mark: age() is cheap where casting xmin is not
mark AS (
    SELECT age((%(since)s::bigint %% 4294967296)::text::xid) AS a)
SELECT 'rel', c.oid FROM pg_class c JOIN ns ON ns.oid = c.relnamespace
WHERE age(c.xmin) <= (SELECT a FROM mark)
  AND c.relkind IN ('r', 'p', 'f', 'v', 'm', 'S')
UNION ALL
SELECT 'rel', i.indrelid FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid
WHERE age(c.xmin) <= (SELECT a FROM mark)
UNION ALL
SELECT CASE WHEN c.relkind = 'c' THEN 'type' ELSE 'rel' END,
       CASE WHEN c.relkind = 'c' THEN c.reltype ELSE coalesce(i.indrelid, c.oid) END
FROM pg_class c
LEFT JOIN pg_index i ON i.indexrelid = c.oid
WHERE c.oid = ANY(%(relations)s::oid[])
UNION ALL
SELECT 'type', c.reltype FROM pg_class c JOIN ns ON ns.oid = c.relnamespace
WHERE age(c.xmin) <= (SELECT a FROM mark) AND c.relkind = 'c'
UNION ALL
SELECT 'proc', p.oid FROM pg_proc p JOIN ns ON ns.oid = p.pronamespace
WHERE age(p.xmin) <= (SELECT a FROM mark)
UNION ALL
SELECT 'type', t.oid FROM pg_type t JOIN ns ON ns.oid = t.typnamespace
WHERE age(t.xmin) <= (SELECT a FROM mark) AND t.typtype IN ('e', 'd', 'r', 'c')
UNION ALL
SELECT CASE WHEN k.contypid <> 0 THEN 'type' ELSE 'rel' END,
       CASE WHEN k.contypid <> 0 THEN k.contypid ELSE k.conrelid END
FROM pg_constraint k WHERE age(k.xmin) <= (SELECT a FROM mark)
  AND (k.contypid <> 0 OR k.conrelid <> 0)
UNION ALL
SELECT 'schema', n.oid FROM pg_namespace n WHERE age(n.xmin) <= (SELECT a FROM mark)
UNION ALL
SELECT 'ext', e.oid FROM pg_extension e WHERE age(e.xmin) <= (SELECT a FROM mark)
UNION ALL
SELECT CASE o.catalog
         WHEN 'pg_proc' THEN 'proc'
         WHEN 'pg_namespace' THEN 'schema'
         WHEN 'pg_extension' THEN 'ext'
         WHEN 'pg_type' THEN CASE WHEN t.typrelid <> 0 AND tc.relkind <> 'c'
                                  THEN 'rel' ELSE 'type' END
         ELSE CASE WHEN coalesce(k.conrelid, tg.tgrelid, po.polrelid, ad.adrelid,
                                 0) <> 0 THEN 'rel'
                   WHEN k.contypid <> 0 THEN 'type'
                   ELSE 'gone:' || o.catalog END
       END,
       CASE o.catalog
         WHEN 'pg_type' THEN CASE WHEN t.typrelid <> 0 AND tc.relkind <> 'c'
                                  THEN t.typrelid ELSE o.objid END
         WHEN 'pg_proc' THEN o.objid WHEN 'pg_namespace' THEN o.objid
         WHEN 'pg_extension' THEN o.objid
         ELSE coalesce(NULLIF(k.conrelid, 0), NULLIF(k.contypid, 0), tg.tgrelid,
                       po.polrelid, ad.adrelid, o.objid)
       END
FROM unnest(%(objects)s::text[], %(object_ids)s::oid[]) AS o(catalog, objid)
LEFT JOIN pg_type t ON o.catalog = 'pg_type' AND t.oid = o.objid
LEFT JOIN pg_class tc ON tc.oid = t.typrelid
LEFT JOIN pg_constraint k ON o.catalog = 'pg_constraint' AND k.oid = o.objid
LEFT JOIN pg_trigger tg ON o.catalog = 'pg_trigger' AND tg.oid = o.objid
LEFT JOIN pg_policy po ON o.catalog = 'pg_policy' AND po.oid = o.objid
LEFT JOIN pg_attrdef ad ON o.catalog = 'pg_attrdef' AND ad.oid = o.objid
WHERE o.catalog IN ('pg_proc', 'pg_namespace', 'pg_extension', 'pg_type',
                    'pg_constraint', 'pg_trigger', 'pg_policy', 'pg_attrdef')
UNION ALL
-- the mark for the next run, which starts after this refresh
SELECT 'watermark', pg_snapshot_xmin(pg_current_snapshot())::text::bigint
"""
_WATERMARK = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"


class StaleSnapshot(AssertionError):
    """A refreshed snapshot differs from a full read: a bug in the refresh."""


@dataclass
class Touched:
    """What a run of statements locked: relation oids, and (catalog, oid) of
    other objects."""

    relations: set[int] = field(default_factory=set)
    objects: set[tuple[str, int]] = field(default_factory=set)
    exact: bool = True


class SnapshotCache:
    """The last snapshot of the database behind *conn*, refreshed by difference."""

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        exclude_schemas: Iterable[str],
        *,
        mode: str = "incremental",
    ) -> None:
        """*mode* ``incremental`` re-reads what changed; ``full`` reads everything
        every time; ``checked`` re-reads what changed, then reads everything and
        raises :class:`StaleSnapshot` if the two differ (for tests)."""
        self.conn = conn
        self.exclude = tuple(exclude_schemas)
        self.mode = mode
        conn.execute(GENERIC_PLANS)
        self._next_since: int | None = None
        self.current: Snapshot | None = None
        self._since = 0
        self.full_reads = 0
        self.partial_reads = 0

    def full(self) -> Snapshot:
        """Read the whole schema."""
        self.full_reads += 1
        self._next_since = None
        self.current = self._read(None)
        return self.current

    def _read(self, only: dict[str, list[int]] | None) -> Snapshot:
        return take_snapshot(
            self.conn, exclude_schemas=self.exclude, only=only, set_plan_mode=False
        )

    def start(self) -> None:
        """Mark the start of a run of statements: later writes count as changes.

        After a refresh the mark is known already (nothing wrote since), which
        saves a round trip per run.
        """
        if self._next_since is not None:
            self._since, self._next_since = self._next_since, None
            return
        row = self.conn.execute(_WATERMARK).fetchone()
        self._since = int(row[0]) if row else 0

    def refresh(self, touched: Touched) -> Snapshot:
        """The schema after the run that began at :meth:`start` and locked
        *touched*; reads only what may have changed, or all when it must."""
        if self.current is None or not touched.exact or self.mode == "full":
            return self.full()
        dirty = self._dirty(touched, self._since)
        if dirty is None:
            return self.full()
        previous = self.current
        fresh = self._read({_ONLY[cls]: sorted(oids) for cls, oids in dirty.items()})
        if self._renamed(previous, fresh) or self._type_changed(previous, fresh):
            return self.full()
        self.partial_reads += 1
        merged = _merge(previous, fresh, dirty)
        if self.mode == "checked":
            self._check(merged)
        self.current = merged
        return merged

    def _check(self, merged: Snapshot) -> None:
        whole = take_snapshot(self.conn, exclude_schemas=self.exclude)
        if whole.to_json() != merged.to_json():
            from dbamgr.schema.diff import diff_snapshots

            differences = diff_snapshots(whole, merged).render()
            raise StaleSnapshot(f"a refreshed snapshot missed changes:\n{differences}")

    def _dirty(self, touched: Touched, since: int) -> dict[str, set[int]] | None:
        objects = sorted(touched.objects)
        rows = self.conn.execute(
            _CHANGED,
            {
                "since": since,
                "relations": sorted(touched.relations),
                "objects": [catalog for catalog, _ in objects],
                "object_ids": [oid for _, oid in objects],
            },
            prepare=True,
        ).fetchall()
        assert self.current is not None
        dirty: dict[str, set[int]] = {cls: set() for cls in _ONLY}
        for found, number in rows:
            if found == "watermark":
                self._next_since = int(number)
                continue
            cls, oid = found, int(number)
            if found.startswith("gone:"):
                # a constraint, trigger, policy or default dropped: its owner
                owner = self.current.parts.get((found.removeprefix("gone:"), oid))
                if owner is None:
                    logger.debug("a lock on an unknown object: reading everything")
                    return None
                cls, oid = owner
            dirty[cls].add(oid)
        # locked relations that are gone now (dropped) are dirty too
        dirty["rel"] |= touched.relations & set(self.current.catalog.get("rel", {}))
        return dirty

    @staticmethod
    def _renamed(previous: Snapshot, fresh: Snapshot) -> bool:
        """Whether an object that was read again has a new name (or a column a
        new name): other objects may print that name."""
        for cls, objects in fresh.catalog.items():
            known = previous.catalog.get(cls, {})
            for oid, (_, name) in objects.items():
                if oid in known and known[oid][1] != name:
                    return True
        for relation, columns in fresh.attnums.items():
            before = previous.attnums.get(relation, {})
            for attnum, name in columns.items():
                if attnum in before and before[attnum] != name:
                    return True
        return False

    @staticmethod
    def _type_changed(previous: Snapshot, fresh: Snapshot) -> bool:
        """Whether a type that existed before was altered (not created, not
        dropped): defaults and checks elsewhere print its values."""
        return bool(
            set(fresh.catalog.get("type", {})) & set(previous.catalog.get("type", {}))
        )


def _merge(previous: Snapshot, fresh: Snapshot, dirty: dict[str, set[int]]) -> Snapshot:
    objects = {kind: dict(entries) for kind, entries in previous.objects.items()}
    catalog = {cls: dict(entries) for cls, entries in previous.catalog.items()}
    attnums = dict(previous.attnums)
    parts = {
        key: owner
        for key, owner in previous.parts.items()
        if owner[1] not in dirty.get(owner[0], set())
    }
    parts.update(fresh.parts)
    for cls, oids in dirty.items():
        known = catalog.setdefault(cls, {})
        for oid in oids:
            if oid in known:
                kind, name = known.pop(oid)
                objects.get(kind, {}).pop(name, None)
                attnums.pop(name, None)
    for kind, found in fresh.objects.items():
        objects.setdefault(kind, {}).update(found)
    for cls, indexed in fresh.catalog.items():
        catalog.setdefault(cls, {}).update(indexed)
    attnums.update(fresh.attnums)
    merged = Snapshot(objects, previous.server_version)
    merged.catalog = catalog
    merged.attnums = attnums
    merged.parts = parts
    return merged
