"""Processes that open a new SQLite cache at the same moment all get it (no immediate 'database is locked')."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3


def _open_together(root: str, barrier) -> None:
    from gme_data.retrieval.vector_cache import VectorCache

    barrier.wait()
    cache = VectorCache(root)
    cache.put_many(["k"], __import__("numpy").ones((1, 4), dtype="float32"))


def test_processes_opening_a_fresh_cache_together(tmp_path):
    # before open_wal retried the WAL switch, about one round in three had a process fail at once
    ctx = mp.get_context("spawn")
    for round_no in range(6):
        root = tmp_path / f"round{round_no}"
        barrier = ctx.Barrier(3)
        procs = [ctx.Process(target=_open_together, args=(str(root), barrier)) for _ in range(3)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(120)
        assert [p.exitcode for p in procs] == [0, 0, 0], f"round {round_no}"
        with sqlite3.connect(root / "embeddings.sqlite") as con:
            assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert {r[1] for r in con.execute("PRAGMA table_info(emb)")} == {"key", "dim", "vec", "used"}
            assert con.execute("SELECT COUNT(*) FROM emb").fetchone()[0] == 1
