"""``python -m dbamgr``."""

import sys

if sys.argv[1:2] == ["wal"] and sys.argv[2:3] in (["push"], ["fetch"]):
    # archive_command and restore_command: start without the whole CLI
    from dbamgr.backup.walcli import main as wal_main

    sys.exit(wal_main(sys.argv[2:]))

from dbamgr.cli import main

main()
