"""generated_queries materialized through Dagster against a real OpenAI-compatible server on loopback."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from tests.support.openai_server import OpenAICompatServer


def _materialization(res: dg.ExecutionResult, key: str) -> dict:
    mats = [m for m in res.get_asset_materialization_events() if m.asset_key.to_user_string() == key]
    return mats[-1].materialization.metadata


def test_endpoint_backend_with_cache_and_accounting(workbench: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_LLM_KEY", "sk-test")
    monkeypatch.setenv("GME_DATA_LLM_API_KEY_ENVS", "TEST_LLM_KEY")  # the operator admits this key variable
    from dagster_project.definitions import build_resources, defs, register_shards
    from dagster_project.resources import LLMResource

    instance = dg.DagsterInstance.ephemeral()
    register_shards(instance)
    assets = [dg.AssetKey(k) for k in ("raw_corpus", "candidates")]
    job = defs.resolve_job_def("synthesis_job")
    assert job.execute_in_process(instance=instance, partition_key="sample-wiki_03", asset_selection=assets).success
    with OpenAICompatServer(model="mllm-test", api_key="sk-test") as server:
        server.script(["429"])  # the first request is rate limited, then answered
        resources = build_resources()
        resources["llm"] = LLMResource(backend="openai", base_url=server.base_url, model="mllm-test",
                                       api_key_env="TEST_LLM_KEY", max_http_retries=3, concurrency=2,
                                       price_prompt_per_1k=0.5, price_completion_per_1k=1.5)
        gq = defs.get_assets_def("generated_queries")
        cands = defs.get_assets_def("candidates")
        first = dg.materialize([gq, cands.to_source_asset()], resources=resources, instance=instance,
                               partition_key="sample-wiki_03", selection=[gq.key])
        assert first.success
        md = _materialization(first, "generated_queries")
        n_requests = server.request_count
        assert md["backend"].value == "openai" and md["model"].value == "mllm-test"
        assert md["requests"].value >= n_requests - 1 > 0
        assert md["prompt_tokens"].value > 0 and md["cost_usd"].value > 0
        assert md["dagster/row_count"].value > 0
        assert any(x.status == 429 for x in server.log)
        # a second materialization answers everything from the DuckDB cache: zero new requests
        second = dg.materialize([gq, cands.to_source_asset()], resources=resources, instance=instance,
                                partition_key="sample-wiki_03", selection=[gq.key])
        assert second.success
        assert server.request_count == n_requests
        md2 = _materialization(second, "generated_queries")
        assert md2["requests"].value == 0 and md2["cache_hits"].value > 0
        assert md2["dagster/row_count"].value == md["dagster/row_count"].value
