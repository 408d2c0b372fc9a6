"""Database access: connections and the catalog queries dbamgr shares."""

from dbamgr.db.connect import application_name, check_url, connect, is_connection_lost

__all__ = ["application_name", "check_url", "connect", "is_connection_lost"]
