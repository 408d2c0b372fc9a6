"""Proof that migrations are reversible, and that live schemas match them.

>>> report = verify(project)          # up → down → up on a scratch database
>>> drift = detect_drift(project, target)
"""

from dbamgr.verify.drift import DriftReport, detect_drift
from dbamgr.verify.engine import MigrationCheck, PhaseTrace, VerifyReport, verify
from dbamgr.verify.locks import LockTaken, StatementTrace, TableLock

__all__ = [
    "DriftReport",
    "LockTaken",
    "MigrationCheck",
    "PhaseTrace",
    "StatementTrace",
    "TableLock",
    "VerifyReport",
    "detect_drift",
    "verify",
]
