"""The retention policy's decisions, on catalogs built in memory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dbamgr.backup.repository import BackupInfo
from dbamgr.backup.retention import plan_expiry
from dbamgr.errors import UsageError

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def backup(
    backup_id: str,
    days_ago: float,
    kind: str = "full",
    parent: str | None = None,
    status: str = "complete",
) -> BackupInfo:
    ended = NOW - timedelta(days=days_ago)
    return BackupInfo(
        id=backup_id,
        kind=kind,
        status=status,
        start_time=ended - timedelta(minutes=5),
        stop_time=ended,
        parent=parent,
        start_lsn="0/2000028",
        stop_lsn="0/2000100",
    )


def test_keep_full_keeps_the_incrementals_of_kept_fulls_only() -> None:
    catalog = [
        backup("F1", 10),
        backup("I1", 9, "incremental", "F1"),
        backup("F2", 5),
        backup("I2", 4, "incremental", "F2"),
        backup("I3", 3, "incremental", "I2"),
    ]
    keep, remove = plan_expiry(
        catalog, keep_full=1, keep_days=None, keep_logical=None, now=NOW
    )
    assert set(keep) == {"F2", "I2", "I3"}
    assert set(remove) == {"F1", "I1"}


def test_a_recovery_window_keeps_the_backup_before_its_start() -> None:
    catalog = [backup("F1", 20), backup("F2", 9), backup("F3", 6), backup("F4", 1)]
    keep, remove = plan_expiry(
        catalog, keep_full=None, keep_days=7, keep_logical=None, now=NOW
    )
    # F2 is needed to restore to any moment between 7 and 6 days ago
    assert set(keep) == {"F2", "F3", "F4"}
    assert set(remove) == {"F1"}


def test_a_kept_incremental_keeps_every_backup_it_builds_on() -> None:
    catalog = [
        backup("F1", 30),
        backup("I1", 20, "incremental", "F1"),
        backup("I2", 2, "incremental", "I1"),
    ]
    keep, remove = plan_expiry(
        catalog, keep_full=None, keep_days=7, keep_logical=None, now=NOW
    )
    assert set(keep) == {"F1", "I1", "I2"} and not remove


def test_incomplete_backups_go_unless_still_running_and_logical_are_counted_apart() -> (
    None
):
    catalog = [
        backup("F1", 3),
        backup("F2", 2, status="running"),
        backup("F3", 1, status="running"),
        backup("L1", 5, "logical"),
        backup("L2", 4, "logical"),
    ]
    keep, remove = plan_expiry(
        catalog,
        keep_full=1,
        keep_days=None,
        keep_logical=1,
        now=NOW,
        running_elsewhere={"F3"},
    )
    assert set(keep) == {"F1", "F3", "L2"}
    assert set(remove) == {"F2", "L1"}


def test_no_policy_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="no retention policy"):
        plan_expiry([], keep_full=None, keep_days=None, keep_logical=None, now=NOW)
