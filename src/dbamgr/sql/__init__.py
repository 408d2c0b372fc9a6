"""SQL text handling on top of pglast, PostgreSQL's own parser."""

from dbamgr.sql.directives import Directive, find_directives
from dbamgr.sql.split import LineIndex, Statement, has_statements, split_statements

__all__ = [
    "Directive",
    "LineIndex",
    "Statement",
    "find_directives",
    "has_statements",
    "split_statements",
]
