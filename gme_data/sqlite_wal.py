"""Reused SQLite connections in WAL mode for the small on-disk caches (file hashes, pHashes).

Opening a connection per lookup and committing in rollback-journal mode costs a file sync per
write (~20 ms on this machine: most of a small image's pHash time). One connection per (file,
process, thread), in WAL mode with ``synchronous=NORMAL``, makes a commit a cheap append; other
processes still read and write the same file safely (SQLite's locks, 60 s busy timeout).

Switching a new file to WAL needs an exclusive lock, and SQLite answers "database is locked" at once
(without its busy handler) while another process holds the file: two processes opening a fresh cache
together failed about one time in three. :func:`open_wal` retries the switch for up to the same 60 s.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

#: seconds a connection waits for another process's lock (busy timeout, and the WAL switch's retries)
LOCK_WAIT_S = 60.0

_CONNECTIONS: dict[tuple[str, int, int], sqlite3.Connection] = {}


def open_wal(path: str | Path, **connect: object) -> sqlite3.Connection:
    """A new connection to ``path`` in WAL mode with ``synchronous=NORMAL`` and a 60 s busy timeout
    (``connect``: more :func:`sqlite3.connect` options)."""
    con = sqlite3.connect(path, timeout=LOCK_WAIT_S, **connect)
    _switch_to_wal(con, path)
    con.execute("PRAGMA synchronous=NORMAL")
    return con


def _switch_to_wal(con: sqlite3.Connection, path: str | Path) -> None:
    deadline = time.monotonic() + LOCK_WAIT_S
    pause = 0.005
    while True:
        try:
            con.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                con.close()
                raise sqlite3.OperationalError(f"{path}: cannot switch to WAL mode: {exc}") from exc
            time.sleep(pause)
            pause = min(2 * pause, 0.25)


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
