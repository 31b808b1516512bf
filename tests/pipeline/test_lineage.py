"""The DuckDB lineage store: tracing, drop reports, replace-not-duplicate, kill safety, concurrency."""

from __future__ import annotations

import multiprocessing as mp
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gme_data.lineage import LineageStore, StageOutput


def _chain(store: LineageStore) -> None:
    raw = StageOutput()
    raw.keep("raw-1", "raw_row", stage="raw_corpus", source="wiki.jsonl")
    raw.drop("raw-2", "raw_row", "unreadable_image", stage="raw_corpus")
    store.write_stage("raw_corpus", "s1", "run-a", raw)
    cand = StageOutput()
    cand.keep("cand-1", "candidate", parents=["raw-1"], stage="candidates", score=0.91, domain="animals")
    store.write_stage("candidates", "s1", "run-a", cand)
    gen = StageOutput()
    gen.keep("q-1", "query", parents=["cand-1"], stage="generated_queries", prompt_version="doc2query@v1")
    gen.drop("q-2", "query", "entity_leak", parents=["cand-1"], stage="generated_queries")
    store.write_stage("generated_queries", "s1", "run-b", gen)
    fused = StageOutput()
    fused.keep("f-1", "sample", parents=["q-1", "cand-1", "img-9"], stage="fused_queries", score=0.33)
    store.write_stage("fused_queries", "s1", "run-b", fused)


def test_trace_walks_back_to_the_source(tmp_path: Path) -> None:
    store = LineageStore(tmp_path / "l.duckdb")
    _chain(store)
    trace = store.trace("f-1")
    assert set(trace["parent_id"]) == {"q-1", "cand-1", "img-9", "raw-1"}
    assert trace.loc[trace.parent_id == "raw-1", "stage"].iloc[0] == "candidates"
    assert trace["depth"].max() == 3
    q_row = trace[trace.parent_id == "q-1"].iloc[0]
    assert q_row["parent_kind"] == "query" and "doc2query@v1" in q_row["parent_payload"]


def test_drops_report_reasons(tmp_path: Path) -> None:
    store = LineageStore(tmp_path / "l.duckdb")
    _chain(store)
    drops = store.drops("generated_queries")
    assert drops.to_dict("records") == [{"reason": "entity_leak", "n": 1}]
    assert store.dropped("raw_corpus", reason="unreadable_image")["record_id"].tolist() == ["raw-2"]


def test_rematerializing_replaces_rows(tmp_path: Path) -> None:
    store = LineageStore(tmp_path / "l.duckdb")
    _chain(store)
    _chain(store)
    n = store.query("SELECT count(*) AS n FROM records")["n"].iloc[0]
    e = store.query("SELECT count(*) AS n FROM edges")["n"].iloc[0]
    assert (n, e) == (6, 6)
    # a partition rewrite with fewer rows leaves only the new rows
    out = StageOutput()
    out.keep("cand-1", "candidate", parents=["raw-1"], stage="candidates")
    store.write_stage("generated_queries", "s1", "run-c", out)
    assert store.query("SELECT count(*) AS n FROM records WHERE asset_key='generated_queries'")["n"].iloc[0] == 1
    assert store.query("SELECT run_id FROM assets WHERE asset_key='generated_queries'")["run_id"].iloc[0] == "run-c"


def test_killed_writer_leaves_no_half_written_rows(tmp_path: Path) -> None:
    db = tmp_path / "l.duckdb"
    store = LineageStore(db)
    _chain(store)
    script = textwrap.dedent(f"""
        import os, signal
        from gme_data.lineage import LineageStore
        s = LineageStore({str(db)!r})
        with s.connect() as con:
            con.execute("BEGIN TRANSACTION")
            con.execute("DELETE FROM records WHERE asset_key = 'candidates'")
            con.execute("INSERT INTO records (record_id, asset_key, partition) VALUES ('half', 'candidates', 's1')")
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode != 0
    after = LineageStore(db)
    ids = set(after.query("SELECT record_id FROM records WHERE asset_key='candidates'")["record_id"])
    assert ids == {"cand-1"}


def rewrite_partition(store, part: str) -> int:
    """Write 200 candidates (each with its raw parent) to ``part``, three times over; rows written once."""
    out = StageOutput()
    for i in range(200):
        out.keep(f"{part}-{i}", "candidate", parents=[f"raw-{part}-{i}"], stage="candidates")
    for _ in range(3):
        store.write_stage("candidates", part, f"run-{part}", out)
    return len(out.records)


def _writer(db: str, part: str) -> int:
    return rewrite_partition(LineageStore(db), part)


def test_parallel_processes_write_without_losing_rows(tmp_path: Path) -> None:
    db = str(tmp_path / "l.duckdb")
    LineageStore(db)
    ctx = mp.get_context("spawn")
    with ctx.Pool(4) as pool:
        written = pool.starmap(_writer, [(db, f"p{i}") for i in range(4)])
    store = LineageStore(db)
    assert sum(written) == 800
    counts = store.query("SELECT partition, count(*) AS n FROM records GROUP BY 1 ORDER BY 1")
    assert counts["n"].tolist() == [200, 200, 200, 200]
    assert store.query("SELECT count(*) AS n FROM edges")["n"].iloc[0] == 800


def test_reading_a_missing_store_is_a_named_error(tmp_path: Path) -> None:
    from gme_data.errors import LineageError

    store = LineageStore(tmp_path / "l.duckdb")
    store.path.unlink()
    with pytest.raises(LineageError, match="does not exist"):
        store.query("SELECT 1")
