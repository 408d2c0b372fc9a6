"""Snapshots of one database that re-read only what changed.

``verify`` takes three snapshots per migration; read whole, their cost grows with
the schema and verify grows with the square of the number of migrations. A
:class:`SnapshotCache` keeps the last snapshot and, after a run of statements,
re-reads only the objects that run may have changed. It learns which in one of
two ways:

- with the change capture (:mod:`dbamgr.schema.capture`, event triggers, which
  need a superuser): the objects each DDL command created, altered or dropped,
  taken with the run's last statement; plus the relations the run locked for DDL
  (an ``ALTER TABLE`` on a parent reaches its partitions);
- else by a scan: every relation, function, type, schema, extension or column
  whose catalog row was written after the run started (a newer ``xmin``), the
  owners of every object the run locked, and a hash of the roles' names.

When a change could alter how *other* objects print (a rename of a relation,
column, function, type or schema; any change to an existing type; an
extension moved to another schema or version; a change to a collation, a
foreign server or any object of a catalog snapshots do not map; a change to
roles), after a ``GRANT`` or ``REVOKE`` under the capture, or when the run's
locks are not known exactly (statements outside a transaction), the whole
schema is read again.
Tests check the refreshed snapshot against a full one after each kind of DDL.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from dbamgr.schema.capture import Change, changes_table
from dbamgr.schema.owners import MAPPED_CATALOGS, NAMESPACES, OWNERS
from dbamgr.schema.snapshot import (
    CATALOG_CLASSES,
    Snapshot,
    prepare_reader,
    take_snapshot,
)

logger = logging.getLogger(__name__)

# catalog class of a cached object -> the ONLY_KINDS name the catalog query takes
_ONLY = {
    "rel": "relations",
    "proc": "functions",
    "type": "types",
    "schema": "schemas",
    "ext": "extensions",
    "defacl": "default_privileges",
}

# the mark for the next run, which starts after this refresh
_NEXT_MARK = "SELECT 'watermark', pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
# Every role's oid and name, hashed (to 32 bits: the scan returns oids): a role
# renamed renames it in privileges, policies and owners, and leaves no row a
# role without superuser may read the xmin of (pg_authid is closed to it).
_ROLES = (
    "(SELECT hashtextextended(string_agg(r.oid::text || ' ' || r.rolname, ',' "
    "ORDER BY r.oid), 0) & 4294967295 FROM pg_roles r)"
)

# Without the capture: objects whose catalog rows were written at or after a
# transaction id, and the owners of the objects a run locked. Returns (class,
# oid) pairs.
_CHANGED = f"""
WITH {NAMESPACES},
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
-- columns whose row alone was written (a GRANT on a column): the user's
-- relations only, whose oids start at 16384, through the index on attrelid
SELECT CASE WHEN c.relkind = 'c' THEN 'type' ELSE 'rel' END,
       CASE WHEN c.relkind = 'c' THEN c.reltype ELSE coalesce(i.indrelid, c.oid) END
FROM (SELECT DISTINCT at.attrelid FROM pg_attribute at
      WHERE at.attrelid >= 16384 AND at.attnum > 0
        AND age(at.xmin) <= (SELECT a FROM mark)) w
JOIN pg_class c ON c.oid = w.attrelid
LEFT JOIN pg_index i ON i.indexrelid = c.oid
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
-- every entry of default privileges (a few rows): written ones, and the others,
-- whose absence tells an entry the run removed
SELECT CASE WHEN age(d.xmin) <= (SELECT a FROM mark) THEN 'defacl'
            ELSE 'defacl:kept' END, d.oid
FROM pg_default_acl d
UNION ALL
{OWNERS.format(source="unnest(%(objects)s::text[], %(object_ids)s::oid[])")}
UNION ALL
SELECT 'roles', {_ROLES}
UNION ALL
{_NEXT_MARK}
"""

_WATERMARK = f"SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint, {_ROLES}"


class StaleSnapshot(AssertionError):
    """A refreshed snapshot differs from a full read: a bug in the refresh."""


@dataclass
class Touched:
    """What a run of statements locked: relation oids, and (catalog, oid) of
    other objects; and what the change capture noted, if it was taken."""

    relations: set[int] = field(default_factory=set)
    objects: set[tuple[str, int]] = field(default_factory=set)
    exact: bool = True
    # with the change capture: what it noted during the run
    changes: list[Change] | None = None


class SnapshotCache:
    """The last snapshot of the database behind *conn*, refreshed by difference."""

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        exclude_schemas: Iterable[str],
        *,
        mode: str = "incremental",
        capture_schema: str | None = None,
    ) -> None:
        """*mode* ``incremental`` re-reads what changed; ``full`` reads everything
        every time; ``checked`` re-reads what changed, then reads everything and
        raises :class:`StaleSnapshot` if the two differ (for tests).

        *capture_schema* names the schema where
        :func:`~dbamgr.schema.capture.install_capture` installed the change
        capture; without it, changes are found by scanning the catalogs.

        *conn* should read snapshots only (and data, which takes no setting
        of its session): the cache sets its session up with
        :func:`~dbamgr.schema.snapshot.prepare_reader`."""
        self.conn = conn
        self.exclude = tuple(exclude_schemas)
        self.mode = mode
        self._forget_captured: str | None = None
        if capture_schema is not None:
            table = changes_table(capture_schema).as_string()
            self._forget_captured = f"DELETE FROM {table}"
        prepare_reader(conn)
        self._next_since: int | None = None
        self.current: Snapshot | None = None
        self._since = 0
        # the hash of the roles' names when the run started, and after it
        self._roles: int | None = None
        self._next_roles: int | None = None
        self.full_reads = 0
        self.partial_reads = 0
        self.scans = 0

    @property
    def changes_found_by(self) -> str:
        """``captured`` when event triggers say what changed, else ``scanned``."""
        return "scanned" if self._forget_captured is None else "captured"

    def full(self) -> Snapshot:
        """Read the whole schema."""
        self.full_reads += 1
        self._next_since = None
        if self._forget_captured is not None:
            # what the capture noted so far is in this read
            self.conn.execute(self._forget_captured)
        self.current = self._read(None)
        return self.current

    def _read(self, only: dict[str, list[int]] | None) -> Snapshot:
        return take_snapshot(
            self.conn, exclude_schemas=self.exclude, only=only, reader=True
        )

    def start(self) -> None:
        """Mark the start of a run of statements: later writes count as changes.

        After a refresh the mark is known already (nothing wrote since), which
        saves a round trip per run. With the capture no mark is needed.
        """
        if self._forget_captured is not None:
            return
        if self._next_since is not None:
            self._since, self._next_since = self._next_since, None
            self._roles = self._next_roles
            return
        row = self.conn.execute(_WATERMARK).fetchone()
        assert row is not None
        self._since, self._roles = int(row[0]), int(row[1])

    def refresh(self, touched: Touched) -> Snapshot:
        """The schema after the run that began at :meth:`start` and locked
        *touched*; reads only what may have changed, or all when it must."""
        if self.current is None or not touched.exact or self.mode == "full":
            return self.full()
        dirty = self._dirty(touched, self._since)
        if dirty is None:
            return self.full()
        previous = self.current
        gone = self._gone(touched)
        fresh = self._read(
            {
                _ONLY[cls]: sorted(oids - gone.get(cls, set()))
                for cls, oids in dirty.items()
            }
        )
        if (
            self._renamed(previous, fresh)
            or self._type_changed(previous, fresh)
            or self._extension_changed(previous, fresh)
        ):
            return self.full()
        self.partial_reads += 1
        merged = _merge(previous, fresh, dirty)
        if self.mode == "checked":
            self._check(merged)
        self.current = merged
        return merged

    def _check(self, merged: Snapshot) -> None:
        whole = take_snapshot(self.conn, exclude_schemas=self.exclude, reader=True)
        if whole.to_json() != merged.to_json():
            from dbamgr.schema.diff import diff_snapshots

            differences = diff_snapshots(whole, merged).render()
            raise StaleSnapshot(f"a refreshed snapshot missed changes:\n{differences}")
        for index in (
            "catalog",
            "parts",
            "indexes",
            "composites",
            "owned",
            "filenodes",
        ):
            if getattr(whole, index) != getattr(merged, index):
                raise StaleSnapshot(f"a refreshed snapshot has a stale {index} index")

    def _dirty(self, touched: Touched, since: int) -> dict[str, set[int]] | None:
        """The oids of the objects to read again, by catalog class; None when
        only a full read will do."""
        if self._forget_captured is not None:
            return self._captured_dirty(touched)
        if _unmapped(touched):
            return None
        objects = sorted(touched.objects)
        self.scans += 1
        roles = self._roles
        rows = self._query(
            _CHANGED,
            {
                "since": since,
                "relations": sorted(touched.relations),
                "objects": [catalog for catalog, _ in objects],
                "object_ids": [oid for _, oid in objects],
            },
        )
        if self._next_roles != roles:
            logger.debug("roles were created, dropped or renamed: reading everything")
            return None
        kept = {oid for cls, oid in rows if cls == "defacl:kept"}
        dirty = self._owners([row for row in rows if row[0] != "defacl:kept"])
        if dirty is not None:
            assert self.current is not None
            # locked relations that are gone now (dropped) are dirty too
            known = self.current.catalog.get("rel", {})
            dirty["rel"] |= touched.relations & set(known)
            # and so are the entries of default privileges that are gone
            entries = set(self.current.catalog.get("defacl", {}))
            dirty["defacl"] |= entries - kept
        return dirty

    def _captured_dirty(self, touched: Touched) -> dict[str, set[int]] | None:
        changes = touched.changes
        if changes is None:
            return None  # not taken with the run
        assert self.current is not None
        current = self.current
        dirty: dict[str, set[int]] = {cls: set() for cls in _ONLY}
        for change in changes:
            if change.oid is None or change.catalog is None:
                # a GRANT or REVOKE, ALTER DEFAULT PRIVILEGES: no object named
                return None
            if change.catalog not in MAPPED_CATALOGS:
                if change.dropped:
                    continue  # what used it was dropped or altered, and noted
                logger.debug("a change in %s: reading everything", change.catalog)
                return None
            owner = current.owner_of(change.catalog, change.oid)
            cls = CATALOG_CLASSES.get(change.catalog)
            if owner is not None:
                dirty[owner[0]].add(owner[1])
            elif cls is not None and not change.dropped:
                dirty[cls].add(change.oid)  # a new object
            # Else a new constraint, trigger, policy or default, whose relation
            # or type the command also named or locked; or an object made and
            # dropped within the run.
        # The objects the run locked: ALTER EXTENSION ... ADD or DROP names the
        # extension only, and locks the member it takes in or lets go (which
        # the last snapshot may not hold).
        if _unmapped(touched):
            return None
        for catalog, oid in touched.objects:
            owner = current.owner_of(catalog, oid)
            cls = CATALOG_CLASSES.get(catalog)
            if owner is not None:
                dirty[owner[0]].add(owner[1])
            elif cls is not None:
                dirty[cls].add(oid)
        # The relations the run locked for DDL: ALTER TABLE on a parent reaches
        # its partitions and children, a foreign key the referenced table.
        # Those that are new were captured already.
        for oid in touched.relations:
            owner = current.owner_of("pg_class", oid)
            if owner is not None:
                dirty[owner[0]].add(owner[1])
        return dirty

    def _gone(self, touched: Touched) -> dict[str, set[int]]:
        """The objects the capture saw dropped whole, by class: they need no
        read (those it does not see stay to read, and come back empty)."""
        gone: dict[str, set[int]] = {}
        if self._forget_captured is None or not touched.changes:
            return gone
        named = set()
        for change in touched.changes:
            assert change.catalog is not None and change.oid is not None
            cls = CATALOG_CLASSES.get(change.catalog)
            if cls is None:
                continue
            if change.dropped:
                gone.setdefault(cls, set()).add(change.oid)
            else:
                named.add((cls, change.oid))
        for cls, oid in named:  # an oid used again within the run, after all
            gone.get(cls, set()).discard(oid)
        return gone

    def _query(self, query: str, params: dict[str, Any]) -> list[tuple[str, int]]:
        rows = self.conn.execute(query, params, prepare=True).fetchall()
        found = []
        for cls, number in rows:
            if cls == "watermark":
                self._next_since = int(number)
            elif cls == "roles":
                self._next_roles = int(number)
            else:
                found.append((cls, int(number)))
        return found

    def _owners(self, rows: list[tuple[str, int]]) -> dict[str, set[int]] | None:
        """Map the scan's (class, oid) rows to the objects to read again. An
        object that is gone is looked up in the last snapshot; one it does not
        hold was made and dropped within the run, or is no object of a
        snapshot, except for a locked constraint, trigger, policy or default,
        whose owner is then unknown."""
        assert self.current is not None
        dirty: dict[str, set[int]] = {cls: set() for cls in _ONLY}
        for found, oid in rows:
            if not found.startswith("gone:"):
                dirty[found].add(oid)
                continue
            catalog = found.removeprefix("gone:")
            owner = self.current.owner_of(catalog, oid)
            if owner is not None:
                dirty[owner[0]].add(owner[1])
            elif catalog not in CATALOG_CLASSES:
                logger.debug("a lock on an unknown object: reading everything")
                return None
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
    def _extension_changed(previous: Snapshot, fresh: Snapshot) -> bool:
        """Whether an extension that existed before moved to another schema or
        version: columns elsewhere print the names of its types, defaults those
        of its functions."""
        before = previous.objects.get("extensions", {})
        for name, extension in fresh.objects.get("extensions", {}).items():
            old = before.get(name)
            if old is None:
                continue
            if (old["schema"], old["version"]) != (
                extension["schema"],
                extension["version"],
            ):
                return True
        return False

    @staticmethod
    def _type_changed(previous: Snapshot, fresh: Snapshot) -> bool:
        """Whether a type that existed before was altered (not created, not
        dropped): defaults and checks elsewhere print its values."""
        return bool(
            set(fresh.catalog.get("type", {})) & set(previous.catalog.get("type", {}))
        )


def _unmapped(touched: Touched) -> bool:
    """Whether the run locked an object of a catalog snapshots do not map (it
    altered a collation, a foreign server, an operator…): read everything."""
    for catalog, _ in touched.objects:
        if catalog not in MAPPED_CATALOGS:
            logger.debug("a lock on an object of %s: reading everything", catalog)
            return True
    return False


def _merge(previous: Snapshot, fresh: Snapshot, dirty: dict[str, set[int]]) -> Snapshot:
    """*previous* with the objects in *dirty* replaced by what *fresh* read of
    them. The mappings are copied whole (a C-speed copy) and then changed only
    where *dirty* says, so a merge costs what changed, not the schema's size."""
    objects = {kind: dict(entries) for kind, entries in previous.objects.items()}
    catalog = {cls: dict(entries) for cls, entries in previous.catalog.items()}
    attnums = dict(previous.attnums)
    side: dict[str, dict[Any, Any]] = {
        "parts": dict(previous.parts),
        "indexes": dict(previous.indexes),
        "composites": dict(previous.composites),
    }
    owned = dict(previous.owned)
    filenodes = dict(previous.filenodes)
    for cls, oids in dirty.items():
        known = catalog.setdefault(cls, {})
        for oid in oids:
            if oid in known:
                kind, name = known.pop(oid)
                objects.get(kind, {}).pop(name, None)
                attnums.pop(name, None)
            for index, key in owned.pop((cls, oid), ()):
                side[index].pop(key, None)
            if cls == "rel":
                filenodes.pop(oid, None)
    for kind, found in fresh.objects.items():
        objects.setdefault(kind, {}).update(found)
    for cls, indexed in fresh.catalog.items():
        catalog.setdefault(cls, {}).update(indexed)
    attnums.update(fresh.attnums)
    for index, entries in side.items():
        entries.update(getattr(fresh, index))
    owned.update(fresh.owned)
    filenodes.update(fresh.filenodes)
    merged = Snapshot(objects, previous.server_major)
    merged.catalog = catalog
    merged.attnums = attnums
    merged.parts = side["parts"]
    merged.indexes = side["indexes"]
    merged.composites = side["composites"]
    merged.owned = owned
    merged.filenodes = filenodes
    return merged
