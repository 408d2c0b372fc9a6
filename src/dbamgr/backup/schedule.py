"""``dbamgr backup schedule``: crontab lines or systemd units for the routine.

Daily base backups followed by expiry, an archive health check every five
minutes, a heartbeat every minute (for the drills' RPO) and a weekly drill.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from dbamgr.backup.archive import python_command


@dataclass(frozen=True)
class Job:
    """One scheduled command."""

    name: str
    description: str
    command: str
    cron: str
    calendar: str


def jobs(
    project_root: Path, *, backup_time: str = "01:30", drill_day: str = "Sun"
) -> list[Job]:
    """The routine, as commands run in the project *project_root*."""
    hour, minute = (int(part) for part in backup_time.split(":"))
    base = f"{python_command()} -C {shlex.quote(str(project_root))}"
    days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    weekday = days.index(drill_day)
    return [
        Job(
            "backup",
            "daily base backup, then expiry",
            f"{base} backup base && {base} backup expire",
            f"{minute} {hour} * * *",
            f"*-*-* {hour:02d}:{minute:02d}:00",
        ),
        Job(
            "archive-check",
            "WAL archiving health check",
            f"{base} archive status",
            "*/5 * * * *",
            "*:0/5",
        ),
        Job(
            "heartbeat",
            "heartbeat row for RPO",
            f"{base} heartbeat",
            "* * * * *",
            "*:*:00",
        ),
        Job(
            "drill",
            "weekly restore drill",
            f"{base} drill",
            f"{minute} {(hour + 3) % 24} * * {weekday}",
            f"{drill_day} *-*-* {(hour + 3) % 24:02d}:{minute:02d}:00",
        ),
    ]


def crontab(job_list: list[Job]) -> str:
    """Crontab lines (for ``crontab -e`` of the user that runs dbamgr)."""
    lines = ["# dbamgr: backups, archive checks, heartbeats and drills"]
    for job in job_list:
        lines.append(f"# {job.description}")
        command = job.command.replace("%", "\\%")
        lines.append(f"{job.cron} {command} 2>&1 | logger -t dbamgr-{job.name}")
    return "\n".join(lines) + "\n"


def systemd_units(job_list: list[Job], *, prefix: str = "dbamgr") -> dict[str, str]:
    """A service and a timer per job: file name → content."""
    units = {}
    for job in job_list:
        name = f"{prefix}-{job.name}"
        units[f"{name}.service"] = (
            "[Unit]\n"
            f"Description=dbamgr {job.description}\n\n"
            "[Service]\n"
            "Type=oneshot\n"
            f"ExecStart=/bin/sh -c {shlex.quote(job.command)}\n"
        )
        units[f"{name}.timer"] = (
            "[Unit]\n"
            f"Description=dbamgr {job.description} (timer)\n\n"
            "[Timer]\n"
            f"OnCalendar={job.calendar}\n"
            "Persistent=true\n\n"
            "[Install]\n"
            "WantedBy=timers.target\n"
        )
    return units
