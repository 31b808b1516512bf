"""Issue 16: a real Dagster materialization of ``generated_queries`` stopped by its budget, then continued."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb

from tests.generation.conftest import paragraph_responder
from tests.support.openai_server import OpenAICompatServer

SHARD = "sample-wiki_03"


def _llm(server: OpenAICompatServer, budget: float):
    from dagster_project.resources import LLMResource

    return LLMResource(backend="openai", base_url=server.base_url, model="test-model", styles="t2t",
                       concurrency=2, max_tokens=64, max_invalid_retries=0, price_prompt_per_1k=1.0,
                       price_completion_per_1k=2.0, max_budget_usd=budget)


def _candidates_materialized() -> tuple[dg.DagsterInstance, dg.AssetsDefinition, dg.AssetsDefinition]:
    """An instance where SHARD's raw_corpus and candidates are materialized, and the two assets generation needs."""
    from dagster_project.definitions import defs, register_shards

    instance = dg.DagsterInstance.ephemeral()
    register_shards(instance)
    job = defs.resolve_job_def("synthesis_job")
    assert job.execute_in_process(instance=instance, partition_key=SHARD,
                                  asset_selection=[dg.AssetKey("raw_corpus"), dg.AssetKey("candidates")]).success
    return instance, defs.get_assets_def("generated_queries"), defs.get_assets_def("candidates")


def test_materialization_fails_on_budget_and_continues_from_the_cache(workbench: Path) -> None:
    from dagster_project.definitions import build_resources

    instance, gq, cands = _candidates_materialized()
    with OpenAICompatServer(responder=paragraph_responder) as server:
        resources = build_resources()
        resources["llm"] = _llm(server, budget=1.0)
        res = dg.materialize([gq, cands.to_source_asset()], resources=resources, instance=instance,
                             partition_key=SHARD, selection=[gq.key], raise_on_error=False)
        assert not res.success
        failure = next(e for e in res.all_events if e.event_type_value == "STEP_FAILURE")
        message = str(failure.event_specific_data.error)
        first = server.request_count
        assert "stopped by its budget" in message and "max_budget_usd=1 reached" in message
        assert "Spent $" in message and "candidates done" in message and "remain" in message
        assert 0 < first

        resources["llm"] = _llm(server, budget=100.0)
        again = dg.materialize([gq, cands.to_source_asset()], resources=resources, instance=instance,
                               partition_key=SHARD, selection=[gq.key])
        assert again.success
        md = next(m for m in again.get_asset_materialization_events()).materialization.metadata
        assert md["cache_hits"].value == first and md["requests"].value == server.request_count - first
        assert md["max_budget_usd"].value == 100.0 and "doc2query@" in md["llm_usage"].value
    con = duckdb.connect(str(workbench / "cache" / "llm_responses.duckdb"), read_only=True)
    statuses = con.execute("SELECT partition, status, sum(requests), sum(cache_hits) FROM llm_usage "
                           "GROUP BY ALL ORDER BY status").fetchall()
    con.close()
    assert statuses == [(SHARD, "ok", server.request_count - first, first), (SHARD, "stopped_by_budget", first, 0)]


def test_estimate_only_records_an_observation_calls_no_endpoint_and_materializes_nothing(workbench: Path) -> None:
    from dagster_project.definitions import build_resources

    instance, gq, cands = _candidates_materialized()
    with OpenAICompatServer(responder=paragraph_responder) as server:
        resources = build_resources()
        resources["llm"] = _llm(server, budget=0.0)
        res = dg.materialize([gq, cands.to_source_asset()], resources=resources, instance=instance,
                             partition_key=SHARD, selection=[gq.key],
                             run_config={"ops": {"generated_queries": {"config": {"estimate_only": True}}}},
                             raise_on_error=False)
        assert not res.success and server.request_count == 0
    assert res.get_asset_materialization_events() == []
    failure = next(e for e in res.all_events if e.event_type_value == "STEP_FAILURE")
    assert "estimate_only: nothing materialized, no endpoint called" in str(failure.event_specific_data.error)
    obs = [e for e in res.all_events if e.event_type_value == "ASSET_OBSERVATION"]
    md = obs[-1].event_specific_data.asset_observation.metadata
    assert md["estimated_prompts"].value > 0 and md["cached_prompts"].value == 0
    assert md["estimated_cost_usd_max"].value > 0 and md["estimate"].value["tokenizer"].startswith("fallback:")


def test_batch_mode_materialization_records_its_batches(workbench: Path) -> None:
    from dagster_project.definitions import build_resources
    from dagster_project.resources import LLMResource
    from tests.support.batch_server import BatchServer

    instance, gq, cands = _candidates_materialized()
    with BatchServer(responder=paragraph_responder) as server:
        resources = build_resources()
        resources["llm"] = LLMResource(backend="openai", base_url=server.base_url, model="test-model", styles="t2t",
                                       max_tokens=64, max_invalid_retries=0, mode="batch", batch_poll_s=0.01)
        res = dg.materialize([gq, cands.to_source_asset()], resources=resources, instance=instance,
                             partition_key=SHARD, selection=[gq.key])
        assert res.success and server.batch_creates == 1
    md = next(m for m in res.get_asset_materialization_events()).materialization.metadata
    assert md["llm_mode"].value == "batch" and md["llm_batches"].value[0]["status"] == "completed"
    assert md["requests"].value == server.request_count > 0
    reports = [p for p in workbench.rglob("*.html") if "generated_queries" in str(p)
               and "usage_by_prompt" in p.read_text(errors="replace")]
    assert reports, "the stage's quality report shows the usage per prompt"
