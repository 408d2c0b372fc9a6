"""Backups proven restorable: base and logical backups, the WAL archive,
point-in-time restores, retention and restore drills.

The modules are imported one by one (``dbamgr.backup.base`` …) rather than
re-exported here, so that ``wal push``, which PostgreSQL starts once per WAL
segment, loads only what it uses.
"""
