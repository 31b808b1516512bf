"""Reused SQLite connections in WAL mode for the small on-disk caches (file hashes, pHashes).

Opening a connection per lookup and committing in rollback-journal mode costs a file sync per
write (~20 ms on this machine: most of a small image's pHash time). One connection per (file,
process, thread), in WAL mode with ``synchronous=NORMAL``, makes a commit a cheap append; other
processes still read and write the same file safely (SQLite's locks, 60 s busy timeout).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

_CONNECTIONS: dict[tuple[str, int, int], sqlite3.Connection] = {}


def open_wal(path: str | Path, **connect: object) -> sqlite3.Connection:
    """A new connection to ``path`` in WAL mode with ``synchronous=NORMAL`` and a 60 s busy timeout
    (``connect``: more :func:`sqlite3.connect` options)."""
    con = sqlite3.connect(path, timeout=60, **connect)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    return con


def wal_connection(path: str | Path, schema: str) -> sqlite3.Connection:
    """This thread's connection to ``path`` (created with ``schema``, a CREATE ... IF NOT EXISTS statement)."""
    key = (str(path), os.getpid(), threading.get_ident())
    con = _CONNECTIONS.get(key)
    if con is None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        con = open_wal(path)
        con.execute(schema)
        con.commit()
        _CONNECTIONS[key] = con
    return con
