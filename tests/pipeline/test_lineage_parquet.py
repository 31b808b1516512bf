"""The per-step Parquet lineage backend: same answers as DuckDB, replace, concurrency, kills, compaction."""

from __future__ import annotations

import multiprocessing as mp
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from gme_data.errors import InvalidInputError
from gme_data.lineage import LineageStore, StageOutput
from gme_data.lineage_backend import open_lineage_store
from gme_data.lineage_compact import consolidate_into
from gme_data.lineage_parquet import ParquetLineageStore
from tests.pipeline.test_lineage import rewrite_partition

TIME_COLUMNS = {"created_at", "materialized_at", "started_at", "finished_at"}
SORT_KEYS = {"runs": ["run_id"], "assets": ["asset_key", "partition"],
             "records": ["asset_key", "partition", "record_id"],
             "edges": ["asset_key", "partition", "child_id", "parent_id"]}


def _chain(store: LineageStore | ParquetLineageStore) -> None:
    """Four stages over two runs, with drops, a None partition and a re-materialized partition."""
    store.start_run("run-a", job="synthesis_job", config={"shard": "s1"})
    raw = StageOutput()
    raw.keep("raw-1", "raw_row", stage="raw_corpus", source="wiki.jsonl")
    raw.drop("raw-2", "raw_row", "unreadable_image", stage="raw_corpus")
    store.write_stage("raw_corpus", "s1", "run-a", raw)
    cand = StageOutput()
    cand.keep("cand-1", "candidate", parents=["raw-1"], stage="candidates", score=0.91, domain="animals")
    cand.keep("cand-x", "candidate", parents=["raw-1"], stage="candidates")
    store.write_stage("candidates", "s1", "run-a", cand)
    store.finish_run("run-a", "success")
    cand = StageOutput()  # re-materialized by run-b with fewer rows
    cand.keep("cand-1", "candidate", parents=["raw-1"], stage="candidates", score=0.91, domain="animals")
    store.write_stage("candidates", "s1", "run-b", cand, metadata={"note": "rerun"})
    gen = StageOutput()
    gen.keep("q-1", "query", parents=["cand-1"], stage="generated_queries", prompt_version="doc2query@v1")
    gen.drop("q-2", "query", "entity_leak", parents=["cand-1"], stage="generated_queries")
    store.write_stage("generated_queries", "s1", "run-b", gen)
    fused = StageOutput()
    fused.keep("f-1", "sample", parents=["q-1", "cand-1", "img-9"], stage="fused_queries", score=0.33)
    store.write_stage("fused_queries", None, "run-b", fused)


def _table(store: LineageStore | ParquetLineageStore, name: str) -> pd.DataFrame:
    df = store.query(f"SELECT * FROM {name}")
    df = df.drop(columns=[c for c in df.columns if c in TIME_COLUMNS])
    return df.sort_values(SORT_KEYS[name]).reset_index(drop=True)


def _files(root: Path, pattern: str = "*") -> list[Path]:
    return sorted(p for p in root.rglob(pattern) if p.is_file())


@pytest.fixture()
def both(tmp_path: Path) -> tuple[LineageStore, ParquetLineageStore]:
    duck, parq = LineageStore(tmp_path / "l.duckdb"), ParquetLineageStore(str(tmp_path / "lineage"))
    for store in (duck, parq):
        _chain(store)
    return duck, parq


def test_parquet_backend_answers_like_duckdb(both: tuple[LineageStore, ParquetLineageStore]) -> None:
    duck, parq = both
    for rid in ("f-1", "q-1", "cand-1", "raw-1"):
        pd.testing.assert_frame_equal(parq.trace(rid), duck.trace(rid))
    assert set(parq.trace("f-1")["parent_id"]) == {"q-1", "cand-1", "img-9", "raw-1"}
    for asset in ("raw_corpus", "generated_queries", "candidates"):
        pd.testing.assert_frame_equal(parq.drops(asset), duck.drops(asset))
    assert parq.drops("generated_queries").to_dict("records") == [{"reason": "entity_leak", "n": 1}]
    pd.testing.assert_frame_equal(parq.dropped("raw_corpus", reason="unreadable_image").drop(columns="created_at"),
                                  duck.dropped("raw_corpus", reason="unreadable_image").drop(columns="created_at"))
    pd.testing.assert_frame_equal(parq.record("q-1").drop(columns="created_at"),
                                  duck.record("q-1").drop(columns="created_at"))
    for name in ("runs", "assets", "records", "edges"):
        pd.testing.assert_frame_equal(_table(parq, name), _table(duck, name))


def test_rematerializing_replaces_the_partition_files(both: tuple[LineageStore, ParquetLineageStore]) -> None:
    _, parq = both
    root = Path(parq.root)
    # one version per table and partition is left; candidates/s1 holds run-b's single record
    for table in ("records", "edges", "assets"):
        assert len(_files(root / table / "candidates" / "s1")) == 1
    assert parq.query("SELECT record_id FROM records WHERE asset_key = 'candidates'")["record_id"].tolist() == ["cand-1"]
    assets = parq.query("SELECT run_id, metadata FROM assets WHERE asset_key = 'candidates'")
    assert assets["run_id"].tolist() == ["run-b"] and "rerun" in assets["metadata"].iloc[0]
    runs = parq.query("SELECT run_id, coalesce(job, '-') AS job, status FROM runs ORDER BY run_id")
    assert runs.to_dict("records") == [{"run_id": "run-a", "job": "synthesis_job", "status": "success"},
                                       {"run_id": "run-b", "job": "-", "status": "started"}]
    assert not _files(root, "*.tmp")


def test_empty_lineage_reads_as_typed_empty_tables(tmp_path: Path) -> None:
    parq, duck = ParquetLineageStore(str(tmp_path / "nothing-yet")), LineageStore(tmp_path / "l.duckdb")
    assert parq.trace("x").empty and parq.drops("raw_corpus").empty
    for name in ("runs", "assets", "records", "edges"):
        got, want = parq.query(f"SELECT * FROM {name}"), duck.query(f"SELECT * FROM {name}")
        assert list(got.columns) == list(want.columns)
        assert got.empty
    duck_types = duck.query("DESCRIBE records")[["column_name", "column_type"]]
    pd.testing.assert_frame_equal(parq.query("DESCRIBE records")[["column_name", "column_type"]], duck_types)


def _writer(url: str, part: str) -> int:
    return rewrite_partition(ParquetLineageStore(url), part)


def test_writers_in_parallel_processes_need_no_lock(tmp_path: Path) -> None:
    url = str(tmp_path / "lineage")
    reader = ParquetLineageStore(url)
    with mp.get_context("spawn").Pool(4) as pool:
        pending = pool.starmap_async(_writer, [(url, f"p{i}") for i in range(4)])
        while not pending.ready():  # reads while the writers replace their partitions: never an error
            counts = reader.query("SELECT partition, count(*) AS n FROM records GROUP BY 1")
            assert set(counts["n"]) <= {200}
            time.sleep(0.05)
        written = pending.get(timeout=120)
    assert sum(written) == 800
    counts = reader.query("SELECT partition, count(*) AS n FROM records GROUP BY 1 ORDER BY 1")
    assert counts["n"].tolist() == [200, 200, 200, 200]
    assert reader.query("SELECT count(*) AS n FROM edges")["n"].iloc[0] == 800
    assert reader.trace("p2-7")["parent_id"].tolist() == ["raw-p2-7"]
    assert len(_files(Path(url) / "records")) == 4


KILL_MID_WRITE = textwrap.dedent("""
    import os, signal, sys
    from gme_data.lineage import StageOutput
    from gme_data.lineage_parquet import ParquetLineageStore

    store = ParquetLineageStore(sys.argv[1])
    calls = []

    def dying_put(path, data):
        calls.append(path)
        if len(calls) == int(sys.argv[2]):  # this file: half of it written, then killed
            store.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
            with open(path + ".tmp", "wb") as f:
                f.write(data[: len(data) // 2])
                f.flush()
                os.kill(os.getpid(), signal.SIGKILL)
        ParquetLineageStore._put(store, path, data)

    store._put = dying_put
    out = StageOutput()
    out.keep("half", "candidate", parents=["raw-9"], stage="candidates")
    store.write_stage("candidates", "s1", "run-killed", out)
""")


@pytest.mark.parametrize("die_at", [2, 4], ids=["while-writing-edges", "before-the-commit-marker"])
def test_killed_writer_leaves_no_half_written_file(both: tuple[LineageStore, ParquetLineageStore],
                                                   die_at: int) -> None:
    _, parq = both
    before = {name: _table(parq, name) for name in ("assets", "records", "edges")}
    proc = subprocess.run([sys.executable, "-c", KILL_MID_WRITE, parq.url, str(die_at)],
                          capture_output=True, timeout=120, cwd=Path(__file__).parents[2])
    assert proc.returncode != 0, proc.stderr.decode()
    root = Path(parq.root)
    assert _files(root, "*.tmp"), "the killed write should have left its temporary"
    for path in _files(root, "*.parquet"):
        pq.read_table(path)  # every visible file is whole
    for name, table in before.items():  # the killed write is invisible; the previous one still answers
        pd.testing.assert_frame_equal(_table(parq, name), table)
    assert parq.record("half").empty
    # the next write of the partition replaces it and sweeps the leftovers
    out = StageOutput()
    out.keep("cand-2", "candidate", parents=["raw-1"], stage="candidates")
    parq.write_stage("candidates", "s1", "run-c", out)
    assert not _files(root, "*.tmp")
    for table in ("records", "edges", "assets"):
        assert len(_files(root / table / "candidates" / "s1")) == 1
    assert parq.trace("cand-2")["parent_id"].tolist() == ["raw-1"]


def test_compaction_equals_the_duckdb_backend(both: tuple[LineageStore, ParquetLineageStore],
                                              tmp_path: Path) -> None:
    duck, parq = both
    target = tmp_path / "compacted.duckdb"
    stale = LineageStore(target)  # an older compaction of candidates/s1 is replaced, not duplicated
    old = StageOutput()
    old.keep("cand-old", "candidate", parents=["raw-0"], stage="candidates")
    stale.write_stage("candidates", "s1", "run-old", old)
    counts = consolidate_into(parq.url, target)
    assert counts == {"partitions": 4, "records": 6, "edges": 6, "runs": 2}
    compacted = LineageStore(target)
    tables = {name: _table(compacted, name) for name in ("assets", "records", "edges")}
    for name, table in tables.items():
        pd.testing.assert_frame_equal(table, _table(duck, name))
    runs = _table(compacted, "runs")
    pd.testing.assert_frame_equal(runs[runs.run_id != "run-old"].reset_index(drop=True), _table(duck, "runs"))
    pd.testing.assert_frame_equal(compacted.trace("f-1"), duck.trace("f-1"))
    assert consolidate_into(parq, target) == counts  # idempotent
    for name, table in tables.items():
        pd.testing.assert_frame_equal(_table(compacted, name), table)


def test_compaction_cli(both: tuple[LineageStore, ParquetLineageStore], tmp_path: Path,
                        capsys: pytest.CaptureFixture[str]) -> None:
    from gme_data.cli import main

    _, parq = both
    target = tmp_path / "cli.duckdb"
    assert main(["lineage", "compact", "--from", parq.url, "--to", str(target)]) == 0
    assert "6 records" in capsys.readouterr().out
    assert main(["lineage", "trace", "q-1", "--db", str(target)]) == 0
    assert "raw-1" in capsys.readouterr().out
    assert main(["lineage", "trace", "nope", "--from", parq.url]) == 1


def test_fsspec_url_that_is_not_a_local_path() -> None:
    """An fsspec filesystem (memory://, as s3:// would be) is written through fsspec and read by DuckDB."""
    url = f"memory://lineage-test-{time.time_ns()}"
    parq = ParquetLineageStore(url)
    _chain(parq)
    assert set(parq.trace("f-1")["parent_id"]) == {"q-1", "cand-1", "img-9", "raw-1"}
    assert parq.drops("raw_corpus")["reason"].tolist() == ["unreadable_image"]
    assert len(parq.fs.glob(f"{parq.root}/records/candidates/s1/*")) == 1
    parq.fs.rm(parq.root, recursive=True)


def test_backend_is_chosen_by_the_resource_or_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dagster_project.resources import LineageResource

    monkeypatch.setenv("GME_DATA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GME_DATA_STORAGE_URL", str(tmp_path / "storage"))
    for var in ("GME_DATA_LINEAGE_BACKEND", "GME_DATA_LINEAGE_URL", "GME_DATA_LINEAGE_DB"):
        monkeypatch.delenv(var, raising=False)
    assert isinstance(LineageResource().store(), LineageStore)
    monkeypatch.setenv("GME_DATA_LINEAGE_BACKEND", "parquet")
    store = LineageResource().store()
    assert isinstance(store, ParquetLineageStore) and store.url == str(tmp_path / "storage" / "_lineage")
    assert LineageResource(url=str(tmp_path / "x")).store().url == str(tmp_path / "x")
    assert isinstance(LineageResource(backend="duckdb").store(), LineageStore)
    with pytest.raises(InvalidInputError):
        open_lineage_store("postgres")


def test_dagster_materialization_writes_parquet_lineage(workbench: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import dagster as dg

    from dagster_project.definitions import defs, register_shards

    monkeypatch.setenv("GME_DATA_LINEAGE_BACKEND", "parquet")
    monkeypatch.delenv("GME_DATA_LINEAGE_URL", raising=False)
    instance = dg.DagsterInstance.ephemeral()
    register_shards(instance)
    job = defs.resolve_job_def("synthesis_job")
    res = job.execute_in_process(instance=instance, partition_key="sample-dirty",
                                 asset_selection=[dg.AssetKey("raw_corpus"), dg.AssetKey("candidates")])
    assert res.success
    assert not (workbench / "lineage.duckdb").exists()
    store = ParquetLineageStore(str(workbench / "storage" / "_lineage"))
    assert {"unreadable_image", "wrong_type"} <= set(store.drops("raw_corpus")["reason"])
    cands = pd.read_parquet(workbench / "storage" / "candidates" / "sample-dirty.parquet")
    trace = store.trace(cands["id"].iloc[0])
    assert "candidates" in set(trace["stage"]) and any(p.startswith("raw-") for p in trace["parent_id"])
    assert set(store.query("SELECT asset_key FROM assets")["asset_key"]) == {"raw_corpus", "candidates"}
    mats = [e for e in res.all_events if e.event_type_value == "ASSET_MATERIALIZATION"]
    assert all(str(workbench / "storage" / "_lineage") in str(e.event_specific_data.materialization.metadata
                                                               ["lineage_store"].value) for e in mats)


def test_printed_views_answer_the_ui_trace_query(both: tuple[LineageStore, ParquetLineageStore]) -> None:
    """The glob SQL of ``gme-data lineage views`` (the docs' recipe) runs the query the Dagster UI shows."""
    import duckdb

    from gme_data.lineage import trace_sql
    from gme_data.lineage_parquet import views_sql

    duck, parq = both
    con = duckdb.connect()
    con.execute(views_sql(parq.url))
    def ordered(df: pd.DataFrame) -> pd.DataFrame:  # trace_sql orders by depth only
        return df.sort_values(["depth", "child_id", "parent_id"]).reset_index(drop=True)

    want = ordered(duck.query(trace_sql("f-1").rstrip(";")))
    pd.testing.assert_frame_equal(ordered(con.execute(trace_sql("f-1").rstrip(";")).df()), want)
    assert set(want["parent_id"]) == {"q-1", "cand-1", "img-9", "raw-1"}
    assert con.execute("SELECT count(*) FROM records").fetchone()[0] == 6
