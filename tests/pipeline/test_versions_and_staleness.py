"""Code and data versions: Dagster's own stale-status resolver says what is out of sync and why."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

SHARD = "sample-dirty"
CHAIN = ["raw_corpus", "candidates", "generated_queries", "fused_queries"]


def _defs_with(prompt_dir: Path | None = None, monkeypatch: pytest.MonkeyPatch | None = None) -> dg.Definitions:
    """The code location rebuilt, its code versions derived again (from ``prompt_dir`` if given)."""
    from dagster_project import definitions, versions

    if prompt_dir is not None and monkeypatch is not None:
        monkeypatch.setattr(versions, "PROMPT_DIR", prompt_dir)
    assets = versions.with_code_versions(dg.load_assets_from_modules(definitions.ASSET_MODULES))
    return dg.Definitions(assets=assets, jobs=[definitions.synthesis_job], resources=definitions.build_resources())


@pytest.fixture()
def sampled(workbench: Path) -> tuple[dg.DagsterInstance, dg.Definitions]:
    """One small shard through the per-shard chain up to fused_queries, in a fresh instance."""
    from dagster_project.definitions import register_shards

    instance = dg.DagsterInstance.ephemeral()
    register_shards(instance, [SHARD])
    defs = _defs_with()
    res = defs.resolve_job_def("synthesis_job").execute_in_process(
        instance=instance, partition_key=SHARD, asset_selection=[dg.AssetKey(a) for a in CHAIN])
    assert res.success
    return instance, defs


def _status(instance: dg.DagsterInstance, defs: dg.Definitions, asset: str):
    from dagster_project.staleness import staleness

    return staleness(instance, defs, asset, SHARD)


def test_every_asset_has_a_derived_code_version() -> None:
    from dagster_project.definitions import defs

    graph = defs.resolve_asset_graph()
    versions = {k.to_user_string(): graph.get(k).code_version for k in graph.materializable_asset_keys}
    assert all(v and len(v) == 16 for v in versions.values()), versions
    assert len(set(versions.values())) >= 10  # derived per stage, not one constant


def test_prompt_edit_marks_generated_queries_and_downstream_unsynced(
        sampled, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    instance, defs = sampled
    assert {a: _status(instance, defs, a).status for a in CHAIN} == dict.fromkeys(CHAIN, "FRESH")
    prompts = tmp_path / "prompts"
    from gme_data.generation.prompts import PROMPT_DIR

    shutil.copytree(PROMPT_DIR, prompts)
    edited = prompts / "doc2query_small_v1.txt"
    edited.write_text(edited.read_text() + "\nWrite the question in plain words.\n")
    edited_defs = _defs_with(prompts, monkeypatch)
    gq = _status(instance, edited_defs, "generated_queries")
    assert gq.status == "STALE" and gq.reasons == ("generated_queries: has a new code version",), gq
    fused = _status(instance, edited_defs, "fused_queries")  # downstream: its version folds in upstream's
    assert fused.status == "STALE" and fused.reasons == ("fused_queries: has a new code version",), fused
    graph = edited_defs.resolve_asset_graph()
    for later in ("filtered_samples", "hard_negatives", "training_set", "gme_model", "umrb_eval"):
        assert graph.get(dg.AssetKey(later)).code_version != defs.resolve_asset_graph().get(
            dg.AssetKey(later)).code_version
    # stages upstream of the prompt keep their code version
    assert _status(instance, edited_defs, "candidates").status == "FRESH"


def test_identical_rematerialization_keeps_downstream_synced_and_changed_table_does_not(
        sampled, workbench: Path) -> None:
    instance, defs = sampled
    job = defs.resolve_job_def("synthesis_job")
    before = instance.get_latest_materialization_event(dg.AssetKey("candidates"))
    assert job.execute_in_process(instance=instance, partition_key=SHARD,
                                  asset_selection=[dg.AssetKey("candidates")]).success
    after = instance.get_latest_materialization_event(dg.AssetKey("candidates"))
    assert after.run_id != before.run_id
    tags = (before.asset_materialization.tags["dagster/data_version"],
            after.asset_materialization.tags["dagster/data_version"])
    assert tags[0] == tags[1]
    assert _status(instance, defs, "generated_queries").status == "FRESH"
    # a different table (one row fewer, through the stage's own config) gets a new data version
    raw = pd.read_parquet(workbench / "storage" / "raw_corpus" / f"{SHARD}.parquet")
    assert job.execute_in_process(
        instance=instance, partition_key=SHARD, asset_selection=[dg.AssetKey("raw_corpus")],
        run_config={"ops": {"raw_corpus": {"config": {"limit": len(raw) - 1}}}}).success
    cand = _status(instance, defs, "candidates")
    assert cand.status == "STALE" and cand.reasons == (
        "candidates: has a new dependency data version (raw_corpus)",), cand
