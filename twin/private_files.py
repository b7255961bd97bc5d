"""Local state is for its owner only: directories 0700, database files 0600.

The data directory holds sessions, sealed credentials and signing keys; sqlite3 would create
its files 0644 (umask permitting). SQLite gives a database's -wal and -shm files the mode of
the database file itself, so creating that one 0600 is enough.
"""

import os
import sqlite3
from pathlib import Path
from typing import Any

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """`mkdir -p path` with every directory it makes, and `path` itself, 0700."""
    missing = [parent for parent in (path, *path.parents) if not parent.exists()]
    for directory in reversed(missing):
        directory.mkdir(mode=PRIVATE_DIR_MODE, exist_ok=True)
    path.chmod(PRIVATE_DIR_MODE)
    return path


def connect_private(path: Path, **options: Any) -> sqlite3.Connection:
    """`sqlite3.connect(path, **options)` on a file made (or made again) 0600 in a 0700
    directory; a file from before this rule is tightened too."""
    private_dir(path.parent)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, PRIVATE_FILE_MODE))
    path.chmod(PRIVATE_FILE_MODE)
    return sqlite3.connect(path, **options)
