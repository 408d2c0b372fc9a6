"""``python -m dbamgr``."""

from dbamgr.cli import main

main()
