"""The content-addressed vector cache: two processes writing the same keys, the size bound, hits/misses."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3

import numpy as np
import pytest

from gme_data.errors import InvalidInputError
from gme_data.retrieval.base import EmbeddingCache
from gme_data.retrieval.vector_cache import ROW_OVERHEAD, VectorCache


def _vector(i: int, dim: int = 16) -> np.ndarray:
    return np.random.default_rng(i).standard_normal(dim).astype(np.float32)


def _writer(root: str, start: int, rounds: int) -> None:
    cache = VectorCache(root)
    for r in range(rounds):
        keys = [f"k{(start + r * 7 + j) % 300}" for j in range(40)]
        cache.put_many(keys, np.stack([_vector(int(k[1:])) for k in keys]))
        got = cache.get_many(keys, 16)
        for k in keys:  # a reader never sees a half-written or foreign vector
            np.testing.assert_array_equal(got[k], _vector(int(k[1:])))


def test_two_processes_write_the_same_keys(tmp_path):
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), s, 30)) for s in (0, 3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    cache = VectorCache(tmp_path)
    keys = [f"k{i}" for i in range(300)]
    got = cache.get_many(keys, 16)
    assert len(got) == len(cache) > 200
    for k, v in got.items():
        np.testing.assert_array_equal(v, _vector(int(k[1:])))
    with sqlite3.connect(tmp_path / "embeddings.sqlite") as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_size_bound_evicts_least_recently_used(tmp_path):
    row = 16 * 4 + ROW_OVERHEAD
    cache = VectorCache(tmp_path, max_bytes=50 * row)
    cache.put_many([f"a{i}" for i in range(40)], np.stack([_vector(i) for i in range(40)]))
    assert cache.get_many(["a0"], 16)  # a0 is now the most recently used of the first batch
    for start in range(40, 200, 20):
        cache.put_many([f"a{i}" for i in range(start, start + 20)], np.stack([_vector(i) for i in range(start, start + 20)]))
        assert cache.stored_bytes() <= cache.max_bytes
    assert cache.evicted > 0 and len(cache) <= 50
    got = cache.get_many([f"a{i}" for i in range(200)], 16)
    assert "a199" in got and "a1" not in got  # newest kept, oldest untouched gone


def test_hits_misses_and_dim_mismatch(tmp_path):
    cache = VectorCache(tmp_path)
    cache.put_many(["x", "y"], np.stack([_vector(1), _vector(2)]))
    got = cache.get_many(["x", "y", "z"], 16)
    assert set(got) == {"x", "y"} and (cache.hits, cache.misses) == (2, 1)
    assert cache.get_many(["x"], 8) == {}  # another dimension is a miss, not a wrong vector
    assert cache.misses == 2


def test_cache_written_before_the_bound_is_upgraded(tmp_path):
    with sqlite3.connect(tmp_path / "embeddings.sqlite") as con:
        con.execute("CREATE TABLE emb (key TEXT PRIMARY KEY, dim INTEGER, vec BLOB)")
        con.execute("INSERT INTO emb VALUES (?, ?, ?)", ("old", 16, _vector(5).tobytes()))
    cache = EmbeddingCache(tmp_path)
    np.testing.assert_array_equal(cache.get_many(["old"], 16)["old"], _vector(5))


def test_bad_bound_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("GME_DATA_VECTOR_CACHE_MB", "lots")
    with pytest.raises(InvalidInputError, match="GME_DATA_VECTOR_CACHE_MB"):
        VectorCache(tmp_path)
    with pytest.raises(InvalidInputError, match="max_bytes"):
        VectorCache(tmp_path, max_bytes=0)
