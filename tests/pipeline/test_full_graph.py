"""The whole asset graph, synthesis through umrb_eval, materialized for real on sample shards."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

import gme_data
from gme_data.lineage import LineageStore


def _evaluations(res: dg.ExecutionResult) -> dict[str, bool]:
    return {e.event_specific_data.asset_key.to_user_string(): e.event_specific_data.passed
            for e in res.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}


@pytest.mark.slow
def test_whole_graph_materializes_and_traces_back(workbench: Path) -> None:
    from dagster_project.definitions import defs, register_shards

    instance = dg.DagsterInstance.ephemeral()
    register_shards(instance)
    synthesis = defs.resolve_job_def("synthesis_job")
    for shard in ("sample-wiki_01", "sample-wiki_02"):
        res = synthesis.execute_in_process(instance=instance, partition_key=shard)
        assert res.success
        assert set(_evaluations(res).values()) == {True}
    downstream = defs.resolve_job_def("training_eval_job")
    train_cfg = {"config": {"epochs": 2}}
    res = downstream.execute_in_process(instance=instance, run_config={"ops": {
        "gme_model_stage1": train_cfg, "gme_model": train_cfg,
        "umrb_eval": {"config": {"datasets": ["local_easyvqa_it2t", "local_photos_t2i"]}},
    }})
    assert res.success
    assert _evaluations(res) == {k: True for k in ("hard_negatives", "training_set", "hard_negatives_stage2",
                                                   "umrb_eval")}
    # the mining stage reports drift as a second, non-blocking check and draws its margin plot
    checks = {(e.event_specific_data.asset_key.to_user_string(), e.event_specific_data.check_name)
              for e in res.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}
    assert {("hard_negatives", "drift"), ("hard_negatives_stage2", "drift")} <= checks
    [mining] = (workbench / "reports").glob("*/hard_negatives_files/score-hard_negative_margin.png")
    assert "Drift against the previous run" in (mining.parent.parent / "hard_negatives.html").read_text()
    model = res.output_for_node("gme_model")
    assert model["init_from"] and Path(model["model_dir"]).is_dir()
    emb = gme_data.load_embedder(model["model_dir"])
    vec = emb.encode(["a photo of a cat"], role="query")
    assert vec.shape == (1, emb.dim) and abs(float((vec ** 2).sum()) - 1.0) < 1e-4

    scores = pd.read_parquet(workbench / "storage" / "umrb_eval" / "__all__.parquet")
    assert set(scores["model"]) == {"gme_model", "base"}
    assert set(scores["dataset"]) == {"local_easyvqa_it2t", "local_photos_t2i"}
    assert scores["score"].between(0, 100).all()

    train = pd.read_parquet(workbench / "storage" / "training_set" / "__all__.parquet")
    assert set(train["split"]) <= {"train", "validation"} and len(train) > 50
    store = LineageStore(workbench / "lineage.duckdb")
    fused = train[train["combination"] == "IT->T"]["id"].iloc[0]
    trace = store.trace(fused)
    stages = set(trace["stage"])
    assert {"filtered_samples", "fused_queries", "generated_queries", "candidates"} <= stages
    assert any(str(p).startswith("raw-") for p in trace["parent_id"])

    # per-dataset partitions: one reuses what umrb_eval stored for this model, one is evaluated afresh
    store_dir = workbench / "evaluation" / "results"
    stored = {str(p): p.stat().st_mtime_ns for p in store_dir.rglob("local_easyvqa_it2t.json")}
    assert len(stored) == 2  # gme_model and base
    per_dataset = defs.resolve_job_def("umrb_datasets_job")
    for key in ("local_easyvqa_it2t", "local_docs_t2t"):
        part = per_dataset.execute_in_process(instance=instance, partition_key=key)
        assert part.success and _evaluations(part) == {"umrb_dataset_eval": True}
    assert {str(p): p.stat().st_mtime_ns for p in store_dir.rglob("local_easyvqa_it2t.json")} == stored
    shards = pd.concat([pd.read_parquet(p) for p in (workbench / "storage" / "umrb_dataset_eval").glob("*.parquet")])
    assert set(zip(shards["dataset"], shards["model"], strict=True)) == {
        (d, m) for d in ("local_easyvqa_it2t", "local_docs_t2t") for m in ("gme_model", "base")}
    reused = shards[(shards.dataset == "local_easyvqa_it2t") & (shards.model == "gme_model")]["score"].iloc[0]
    assert reused == scores[(scores.dataset == "local_easyvqa_it2t") & (scores.model == "gme_model")]["score"].iloc[0]

    # a domain slice over both shards: every row of its domain, each traced to its filtered sample
    domain = defs.resolve_job_def("domain_datasets_job").execute_in_process(instance=instance, partition_key="animals")
    assert domain.success and _evaluations(domain) == {"domain_datasets": True}
    animals = pd.read_parquet(workbench / "storage" / "domain_datasets" / "animals.parquet")
    assert len(animals) >= 5 and set(animals["domain"]) == {"animals"}
    assert store.trace(f"dom-{animals['id'].iloc[0]}")["stage"].iloc[0] == "domain_datasets"
