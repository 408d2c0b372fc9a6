"""Where a recovery stops."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class RestoreTarget:
    """Where recovery stops: a time, an LSN, a restore point, a transaction, the
    backup's own consistency point (``immediate``), or the end of the archive."""

    time: datetime | None = None
    lsn: str | None = None
    name: str | None = None
    xid: int | None = None
    immediate: bool = False

    @property
    def latest(self) -> bool:
        return not (self.time or self.lsn or self.name or self.xid or self.immediate)

    def describe(self) -> str:
        if self.time is not None:
            return f"time {self.time.isoformat()}"
        if self.lsn is not None:
            return f"LSN {self.lsn}"
        if self.name is not None:
            return f'restore point "{self.name}"'
        if self.xid is not None:
            return f"transaction {self.xid}"
        return "the backup's end" if self.immediate else "the end of the archived WAL"

    def settings(self) -> dict[str, str]:
        if self.time is not None:
            return {"recovery_target_time": self.time.isoformat()}
        if self.lsn is not None:
            return {"recovery_target_lsn": self.lsn}
        if self.name is not None:
            return {"recovery_target_name": self.name}
        if self.xid is not None:
            return {"recovery_target_xid": str(self.xid)}
        if self.immediate:
            return {"recovery_target": "immediate"}
        return {}
