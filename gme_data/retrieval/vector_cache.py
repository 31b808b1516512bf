"""A content-addressed vector cache on disk: (model id + content hash) -> float32 vector.

Stored in one SQLite file (``<dir>/embeddings.sqlite``) in WAL mode: any number of processes
(Dagster's multiprocess executor, Celery workers, parallel partitions) read at once and writes are
serialised by SQLite's file lock (``busy_timeout`` 60 s), each ``put_many`` one transaction, so a
reader never sees half a batch and two processes writing the same key simply write the same vector
twice (``INSERT OR REPLACE``). SQLite is in the standard library, already holds the project's other
caches, and a lookup of a few thousand keys costs milliseconds; DuckDB allows one writing process
only and sharded ``.npy`` files would need their own locking for eviction.

The file is bounded: ``max_bytes`` (default ``GME_DATA_VECTOR_CACHE_MB``, 2048 MB) caps the stored
vector bytes; when a write goes over it the least recently used rows (``used`` is set on every
hit and write) are deleted down to 90 % of the cap. ``hits``/``misses`` count lookups in this
process (the assets show them in their metadata).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gme_data.errors import InvalidInputError
from gme_data.sqlite_wal import open_wal

CACHE_MB_ENV = "GME_DATA_VECTOR_CACHE_MB"
DEFAULT_CACHE_MB = 2048
#: bytes a row costs besides its vector (key, dim, timestamp, b-tree overhead), for the size bound
ROW_OVERHEAD = 96
#: writes between two exact row counts (other processes' rows are seen at the next count)
RECOUNT_EVERY = 64


def default_max_bytes() -> int:
    raw = os.environ.get(CACHE_MB_ENV, "").strip()
    try:
        mb = float(raw) if raw else DEFAULT_CACHE_MB
    except ValueError as exc:
        raise InvalidInputError(f"{CACHE_MB_ENV}={raw!r}: expected a number of megabytes") from exc
    if mb <= 0:
        raise InvalidInputError(f"{CACHE_MB_ENV}={raw!r}: must be > 0")
    return int(mb * 2**20)


class VectorCache:
    """Vectors by string key in ``<root>/<name>`` (SQLite, WAL), LRU-bounded to ``max_bytes``."""

    #: hits and misses of every cache in this process (for stage metadata)
    total_hits = 0
    total_misses = 0

    def __init__(self, root: str | Path, name: str = "embeddings.sqlite", max_bytes: int | None = None):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.path = self.root / name
        self.max_bytes = default_max_bytes() if max_bytes is None else int(max_bytes)
        if self.max_bytes <= 0:
            raise InvalidInputError(f"vector cache {self.path}: max_bytes must be > 0, got {max_bytes}")
        self.hits = 0
        self.misses = 0
        self.evicted = 0
        self._rows_bound: int | None = None
        self._puts = 0
        self._lock = threading.Lock()
        self._con: sqlite3.Connection | None = None
        self._pid = -1
        con = self._connection()
        with self._lock:
            # one transaction, so processes opening a new cache together do not both add the column
            con.execute("BEGIN IMMEDIATE")
            try:
                con.execute("CREATE TABLE IF NOT EXISTS emb (key TEXT PRIMARY KEY, dim INTEGER, vec BLOB, "
                            "used REAL DEFAULT 0)")
                cols = {row[1] for row in con.execute("PRAGMA table_info(emb)")}
                if "used" not in cols:  # a cache written before the size bound existed
                    con.execute("ALTER TABLE emb ADD COLUMN used REAL DEFAULT 0")
                con.execute("CREATE INDEX IF NOT EXISTS emb_used ON emb(used)")
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise

    def _connection(self) -> sqlite3.Connection:
        """One connection per process (a forked child opens its own)."""
        if self._con is None or self._pid != os.getpid():
            con = open_wal(self.path, check_same_thread=False, isolation_level=None)
            self._con, self._pid = con, os.getpid()
        return self._con

    def get_many(self, keys: Sequence[str], dim: int) -> dict[str, np.ndarray]:
        """The stored vectors of ``keys`` (those of another ``dim`` count as missing)."""
        found: dict[str, np.ndarray] = {}
        with self._lock:
            con = self._connection()
            for start in range(0, len(keys), 500):
                chunk = list(keys[start:start + 500])
                marks = ",".join("?" * len(chunk))
                for key, d, blob in con.execute(f"SELECT key, dim, vec FROM emb WHERE key IN ({marks})", chunk):
                    if d == dim:
                        found[key] = np.frombuffer(blob, dtype=np.float32).copy()
            if found:
                now = time.time()
                con.execute("BEGIN IMMEDIATE")
                con.executemany("UPDATE emb SET used = ? WHERE key = ?", [(now, k) for k in found])
                con.execute("COMMIT")
        self.hits += len(found)
        self.misses += len(set(keys)) - len(found)
        VectorCache.total_hits += len(found)
        VectorCache.total_misses += len(set(keys)) - len(found)
        return found

    def put_many(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        """Store ``vectors[i]`` under ``keys[i]`` (one transaction), then evict down to the bound."""
        now = time.time()
        rows = [(k, int(v.shape[0]), np.ascontiguousarray(v, dtype=np.float32).tobytes(), now)
                for k, v in zip(keys, vectors, strict=True)]
        if not rows:
            return
        with self._lock:
            con = self._connection()
            con.execute("BEGIN IMMEDIATE")
            try:
                con.executemany("INSERT OR REPLACE INTO emb (key, dim, vec, used) VALUES (?, ?, ?, ?)", rows)
                self._evict(con, row_bytes=len(rows[0][2]) + ROW_OVERHEAD, added=len(rows))
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise

    def _evict(self, con: sqlite3.Connection, row_bytes: int, added: int) -> None:
        # an upper bound of the rows (other processes' writes are caught at the next recount), so the
        # exact COUNT(*) runs only near the cap, not at every write
        self._puts += 1
        if self._rows_bound is None or self._puts % RECOUNT_EVERY == 0:
            self._rows_bound = int(con.execute("SELECT COUNT(*) FROM emb").fetchone()[0])
        else:
            self._rows_bound += added
        if self._rows_bound * row_bytes <= 0.95 * self.max_bytes:
            return
        n = int(con.execute("SELECT COUNT(*) FROM emb").fetchone()[0])
        self._rows_bound = n
        if n * row_bytes <= self.max_bytes:
            return
        keep = max(1, int(0.9 * self.max_bytes) // row_bytes)
        con.execute("DELETE FROM emb WHERE key IN (SELECT key FROM emb ORDER BY used LIMIT ?)", (n - keep,))
        self.evicted += n - keep
        self._rows_bound = keep

    def stored_bytes(self) -> int:
        """Vector bytes plus the per-row overhead the bound counts."""
        with self._lock:
            row = self._connection().execute("SELECT COUNT(*), COALESCE(SUM(length(vec)), 0) FROM emb").fetchone()
        return int(row[1]) + ROW_OVERHEAD * int(row[0])

    def __len__(self) -> int:
        with self._lock:
            return int(self._connection().execute("SELECT COUNT(*) FROM emb").fetchone()[0])
