"""A DuckDB cache of LLM responses keyed by (endpoint, prompt hash, model, parameters).

Re-running a stage with the same endpoint, prompts, model and parameters calls the endpoint zero
times; the same model name served elsewhere is a different key. The endpoint is its normalised URL
without credentials (:func:`gme_data.generation.config.endpoint_identity`; ``"offline:rules"`` for
the rules backend). Entries written before the endpoint was part of the key stay in the file but
no new request maps onto them (they are re-asked once, never served for an unknown endpoint).
Threads of one process share one connection through a lock. DuckDB lets one process at a time
open the file, so the connection is held only briefly: it is released before every network call
(:meth:`ResponseCache.release`) and reopened after at most ``max_hold_s``; a process that finds
the file locked by another retries with jittered backoff. Only successful HTTP responses are
stored, transport failures never are.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb

from gme_data.generation.errors import GenerationError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS llm_responses (
    key VARCHAR PRIMARY KEY,
    prompt_hash VARCHAR,
    model VARCHAR,
    params JSON,
    content VARCHAR,
    refusal VARCHAR,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    created_at TIMESTAMP
);
ALTER TABLE llm_responses ADD COLUMN IF NOT EXISTS endpoint VARCHAR;
"""
_COLUMNS = ("key, prompt_hash, model, params, content, refusal, prompt_tokens, completion_tokens, created_at, "
            "endpoint")


def prompt_hash(messages: list[dict[str, Any]]) -> str:
    """sha256 of the canonical JSON of the chat messages (images included)."""
    return hashlib.sha256(json.dumps(messages, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def cache_key(p_hash: str, model: str, params: dict[str, Any], *, endpoint: str) -> str:
    """The cache key for one request: endpoint identity, prompt hash, model and sampling parameters."""
    if not endpoint:
        raise ValueError("cache_key needs the endpoint identity (see GenerationConfig.endpoint_identity)")
    blob = json.dumps({"endpoint": endpoint, "prompt": p_hash, "model": model, "params": params}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True)
class CachedResponse:
    """A stored completion: the message content, refusal text and the usage reported at the time."""

    content: str | None
    refusal: str | None
    prompt_tokens: int
    completion_tokens: int


def _is_lock_error(exc: Exception) -> bool:
    msg = str(exc).lower()
    return "lock" in msg or "conflict" in msg or "being used by another process" in msg


class ResponseCache:
    """LLM response cache in a DuckDB file at ``path``."""

    def __init__(self, path: str | Path, lock_timeout_s: float = 300.0, max_hold_s: float = 2.0):
        self.path = Path(path)
        if self.path.exists() and self.path.is_dir():
            raise GenerationError(f"response cache path {self.path} is a directory; give a file path")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lock_timeout_s = lock_timeout_s
        self.max_hold_s = max_hold_s
        self._lock = threading.Lock()
        self._con: duckdb.DuckDBPyConnection | None = None
        self._opened_at = 0.0
        with self._connect() as con:
            con.execute(_SCHEMA)

    def _open(self) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + self.lock_timeout_s
        delay = 0.05
        while True:
            try:
                return duckdb.connect(str(self.path))
            except duckdb.Error as exc:
                if not _is_lock_error(exc) or time.monotonic() > deadline:
                    raise GenerationError(f"cannot open response cache {self.path}: {exc}") from exc
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 1.0)

    def _close_locked(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    @contextmanager
    def _connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._lock:
            if self._con is not None and time.monotonic() - self._opened_at > self.max_hold_s:
                self._close_locked()  # let other processes in
            if self._con is None:
                self._con = self._open()
                self._opened_at = time.monotonic()
            try:
                yield self._con
            except duckdb.Error:
                self._close_locked()
                raise

    def release(self) -> None:
        """Close the file so other processes can use it (called before each network request)."""
        with self._lock:
            self._close_locked()

    def close(self) -> None:
        self.release()

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, key: str) -> CachedResponse | None:
        with self._connect() as con:
            row = con.execute("SELECT content, refusal, prompt_tokens, completion_tokens FROM llm_responses "
                              "WHERE key = ?", [key]).fetchone()
        return None if row is None else CachedResponse(row[0], row[1], int(row[2] or 0), int(row[3] or 0))

    def put(self, key: str, p_hash: str, model: str, params: dict[str, Any], response: CachedResponse,
            endpoint: str = "") -> None:
        """Store ``response`` under ``key``; ``endpoint`` is recorded for inspection (the key already has it)."""
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        with self._connect() as con:
            con.execute(
                f"INSERT OR REPLACE INTO llm_responses ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [key, p_hash, model, json.dumps(params, sort_keys=True), response.content, response.refusal,
                 response.prompt_tokens, response.completion_tokens, now, endpoint],
            )

    def __len__(self) -> int:
        with self._connect() as con:
            return int(con.execute("SELECT count(*) FROM llm_responses").fetchone()[0])

    @contextmanager
    def connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The file's connection for other tables kept next to the cache (the usage table)."""
        with self._connect() as con:
            yield con
