"""sha256 of files, computed once per file version.

Each digest is remembered by (real path, size, mtime, ctime, inode), in memory and in
``<GME_DATA_HOME>/cache/file_sha256.sqlite``, so a large file (model weights, a big image) is read
once, not at every load or stage. A rewritten file has a new mtime/ctime, hence a new digest.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from pathlib import Path

from gme_data import settings
from gme_data.sqlite_wal import wal_connection

DB_NAME = "file_sha256.sqlite"
_MEMO: dict[tuple[str, int, int, int, int], str] = {}
_LOCK = threading.Lock()


def _stat_key(path: Path) -> tuple[str, int, int, int, int]:
    real = os.path.realpath(path)
    st = os.stat(real)
    return real, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


def _db() -> sqlite3.Connection:
    return wal_connection(settings.cache_dir() / DB_NAME, "CREATE TABLE IF NOT EXISTS sha (key TEXT PRIMARY KEY, digest TEXT)")


def stream_digest(path: str | Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file read in 4 MiB chunks (no memo: see :func:`file_sha256` for that)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes, computed once per (real path, size, mtime, ctime, inode)."""
    key = _stat_key(Path(path))
    with _LOCK:
        if key in _MEMO:
            return _MEMO[key]
    db_key = "|".join(map(str, key))
    with _db() as con:
        row = con.execute("SELECT digest FROM sha WHERE key = ?", (db_key,)).fetchone()
    digest = row[0] if row else stream_digest(key[0])
    if not row:
        with _db() as con:
            con.execute("INSERT OR REPLACE INTO sha VALUES (?, ?)", (db_key, digest))
    with _LOCK:
        _MEMO[key] = digest
    return digest
