"""synthesis_job distributed by dagster-celery: real Redis broker, two real Celery workers, real run."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from dagster_project.definitions import register_shards
from dagster_project.executors import (
    CeleryNotInstalledError,
    ExecutorConfigError,
    celery_settings,
    executor_from_env,
)
from gme_data.lineage_parquet import ParquetLineageStore
from tests.scale.celery_defs import celery_synthesis_job
from tests.scale.services import celery_workers, redis_server

SHARD = "sample-dirty"
SELECTION = [dg.AssetKey("raw_corpus"), dg.AssetKey("candidates")]


def test_executor_from_env_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GME_DATA_EXECUTOR", raising=False)
    monkeypatch.delenv("GME_DATA_MAX_CONCURRENT", raising=False)
    assert executor_from_env() is dg.multiprocess_executor
    assert executor_from_env("in-process") is dg.in_process_executor
    monkeypatch.setenv("GME_DATA_MAX_CONCURRENT", "3")
    assert executor_from_env().name == "gme_multiprocess"
    monkeypatch.setenv("GME_DATA_MAX_CONCURRENT", "zero")
    with pytest.raises(ExecutorConfigError, match="GME_DATA_MAX_CONCURRENT"):
        executor_from_env()
    monkeypatch.setenv("GME_DATA_EXECUTOR", "k8s")
    with pytest.raises(ExecutorConfigError, match="multiprocess, in_process, celery"):
        executor_from_env()
    monkeypatch.setenv("GME_DATA_EXECUTOR", "celery")
    monkeypatch.setenv("GME_DATA_CELERY_BROKER", "redis://broker.example:6379/0")
    monkeypatch.delenv("GME_DATA_CELERY_BACKEND", raising=False)
    assert celery_settings() == {"broker": "redis://broker.example:6379/0", "backend": "redis://localhost:6379/1"}
    assert executor_from_env().name == "gme_celery"
    # dagster-celery not importable (None in sys.modules makes `import` raise ImportError)
    monkeypatch.setitem(sys.modules, "dagster_celery", None)
    with pytest.raises(CeleryNotInstalledError, match="pip install dagster-celery"):
        executor_from_env()


@pytest.mark.celery
@pytest.mark.timeout(420)
def test_synthesis_steps_run_in_two_celery_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "var"
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    # the multi-machine set-up: lineage as per-step Parquet next to the shards, no shared DuckDB file
    env = {"GME_DATA_HOME": str(home), "GME_DATA_STORAGE_URL": str(home / "storage"),
           "DAGSTER_HOME": str(dagster_home), "GME_DATA_LINEAGE_BACKEND": "parquet"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("GME_DATA_REPORTS_URL", raising=False)

    with redis_server(tmp_path / "redis") as url:
        broker, backend = f"{url}/0", f"{url}/1"
        monkeypatch.setenv("GME_DATA_CELERY_BROKER", broker)
        monkeypatch.setenv("GME_DATA_CELERY_BACKEND", backend)
        with celery_workers(broker, backend, tmp_path / "celery", n=2, env=env) as workers, \
                dg.instance_for_test(temp_dir=str(dagster_home)) as instance:
            assert register_shards(instance, only=[SHARD]) == [SHARD]
            with dg.execute_job(dg.reconstructable(celery_synthesis_job), instance=instance,
                                tags={"dagster/partition": SHARD}, asset_selection=SELECTION) as res:
                events = list(res.all_events)
                success, run_id = res.success, res.run_id
            worker_pids = workers.pids()
            logs = "\n".join(p.read_text(errors="replace") for p in workers.logs)
            assert success, logs[-4000:]

            # every step ran as a Celery task in one of our workers, not in this process
            delegated = {e.step_key: e.event_specific_data.metadata["Celery worker"].value
                         for e in events if e.event_type_value == "ENGINE_EVENT"
                         and "in celery worker" in (e.message or "")}
            assert set(delegated) == {"raw_corpus", "candidates"}
            assert set(delegated.values()) <= set(workers.names)
            step_pids = {e.step_key: e.pid for e in events if e.event_type_value == "STEP_START"}
            assert set(step_pids) == {"raw_corpus", "candidates"}
            assert os.getpid() not in step_pids.values()
            assert set(step_pids.values()) <= worker_pids
            assert logs.count("Task execute_plan[") >= 2 and "succeeded" in logs

            mats = {e.step_key: e.event_specific_data.materialization for e in events
                    if e.event_type_value == "ASSET_MATERIALIZATION"}
            assert set(mats) == {"raw_corpus", "candidates"}
            assert all(m.partition == SHARD for m in mats.values())
            latest = instance.get_latest_materialization_event(dg.AssetKey("candidates"))
            assert latest is not None and latest.run_id == run_id

    raw = pd.read_parquet(home / "storage" / "raw_corpus" / f"{SHARD}.parquet")
    cands = pd.read_parquet(home / "storage" / "candidates" / f"{SHARD}.parquet")
    assert len(raw) == mats["raw_corpus"].metadata["dagster/row_count"].value >= 1
    assert len(cands) == mats["candidates"].metadata["dagster/row_count"].value >= 1

    assert not (home / "lineage.duckdb").exists()
    store = ParquetLineageStore(str(home / "storage" / "_lineage"))
    parts = store.query("SELECT asset_key, partition, run_id, count(*) AS n FROM records GROUP BY 1, 2, 3")
    assert set(zip(parts.asset_key, parts.partition, strict=True)) == {("raw_corpus", SHARD), ("candidates", SHARD)}
    assert set(parts.run_id) == {run_id}
    assert set(store.drops("raw_corpus")["reason"]) >= {"unreadable_image", "wrong_type"}
    edges = store.query("SELECT count(*) AS n FROM edges WHERE asset_key = 'candidates'")
    assert edges["n"].iloc[0] >= len(cands)
    trace = store.trace(str(cands["id"].iloc[0]))  # across the two workers' files, no compaction
    assert "candidates" in set(trace["stage"]) and any(str(p).startswith("raw-") for p in trace["parent_id"])
