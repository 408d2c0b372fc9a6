"""dbamgr: an automated database administrator for PostgreSQL."""

__version__ = "0.1.0"
