"""Dagster materializations with the default generator: the real llama.cpp server and bundled SmolLM2 GGUF."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from gme_data.generation.local_server import BUNDLED_FILE, BUNDLED_SHA256
from gme_data.lineage import LineageStore
from tests.support.llm_processes import ServerKiller, llama_servers

MODEL = f"{BUNDLED_FILE}@sha256:{BUNDLED_SHA256[:12]}"
SYNTHESIS = ("raw_corpus", "candidates", "generated_queries", "fused_queries", "filtered_samples")


def _materialization(res: dg.ExecutionResult, key: str) -> dict:
    mats = [m for m in res.get_asset_materialization_events() if m.asset_key.to_user_string() == key]
    return mats[-1].materialization.metadata


def test_synthesis_chain_uses_the_local_model_and_reruns_from_cache(workbench: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GME_DATA_LLM_BACKEND", "local")  # the default outside the test suite
    from dagster_project.definitions import defs, register_shards

    instance = dg.DagsterInstance.ephemeral()
    register_shards(instance)
    job = defs.resolve_job_def("synthesis_job")
    # the dirty shard has one clean candidate: the row minimums of the downstream gates are lifted
    lenient = {"config": {"min_rows": 0}}
    res = job.execute_in_process(instance=instance, partition_key="sample-dirty",
                                 asset_selection=[dg.AssetKey(k) for k in SYNTHESIS],
                                 run_config={"ops": {"fused_queries": lenient, "filtered_samples": lenient}})
    assert res.success
    md = _materialization(res, "generated_queries")
    assert md["backend"].value == "local" and md["generator"].value == "llama.cpp-server"
    assert md["model"].value == MODEL and md["requests"].value > 0
    assert llama_servers() == []  # the run's server was stopped

    store = LineageStore(workbench / "lineage.duckdb")
    gq = store.query("SELECT status, json_extract_string(payload, '$.model') AS model, "
                     "json_extract_string(payload, '$.generator') AS generator FROM records "
                     "WHERE asset_key = 'generated_queries'")
    assert len(gq) > 0 and set(gq["model"]) == {MODEL} and set(gq["generator"]) == {"llama.cpp-server"}
    stages = set(store.query("SELECT DISTINCT asset_key FROM assets")["asset_key"])
    assert set(SYNTHESIS) <= stages

    again = job.execute_in_process(instance=instance, partition_key="sample-dirty",
                                   asset_selection=[dg.AssetKey("generated_queries")])
    assert again.success
    md2 = _materialization(again, "generated_queries")
    assert md2["requests"].value == 0 and md2["cache_hits"].value > 0
    assert md2["dagster/row_count"].value == md["dagster/row_count"].value


def test_server_killed_mid_materialization_fails_clearly_and_writes_nothing(workbench: Path) -> None:
    from dagster_project.definitions import build_resources, defs, register_shards
    from dagster_project.resources import LLMResource

    instance = dg.DagsterInstance.ephemeral()
    register_shards(instance)
    shard = "sample-wiki_03"
    job = defs.resolve_job_def("synthesis_job")
    assert job.execute_in_process(instance=instance, partition_key=shard,
                                  asset_selection=[dg.AssetKey("raw_corpus"), dg.AssetKey("candidates")]).success
    resources = build_resources()
    resources["llm"] = LLMResource(backend="local", concurrency=2)
    gq = defs.get_assets_def("generated_queries")
    cands = defs.get_assets_def("candidates")
    killer = ServerKiller(after_s=1.5)
    killer.start()
    res = dg.materialize([gq, cands.to_source_asset()], resources=resources, instance=instance,
                         partition_key=shard, selection=[gq.key], raise_on_error=False)
    killer.join(timeout=5)
    assert not res.success and killer.killed_pid is not None
    failure = next(e for e in res.all_events if e.event_type_value == "STEP_FAILURE")
    message = str(failure.event_specific_data.error)
    assert "local LLM server http://127.0.0.1:" in message and f"pid {killer.killed_pid}" in message
    assert not (workbench / "storage" / "generated_queries" / f"{shard}.parquet").exists()
    store = LineageStore(workbench / "lineage.duckdb")
    n = store.query("SELECT count(*) AS n FROM records WHERE asset_key = 'generated_queries'")["n"].iloc[0]
    assert n == 0
    assert llama_servers() == []
