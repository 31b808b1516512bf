"""Real Dagster materializations of the grid on a tiny setup: partitions train and score their variant,
adding a variant to the YAML and re-running the grid trains only that variant (the rest are cache hits
counted in the asset metadata), and the ablation report is linked from its metadata."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import yaml

from assets.experiment_grid import build_grid_definitions
from dagster_project.definitions import build_resources
from dagster_project.partitions import source_shards
from gme_data.mining import MiningConfig, mine_hard_negatives
from gme_data.retrieval.offline import OfflineEmbedder
from gme_data.training import TrainingSetConfig, build_training_set
from tests.experiments.tiny import filtered_samples

SHARD = "tiny"
GRID = {
    "schema_version": 1, "name": "tiny", "seeds": [0, 1],
    "suite": {"name": "local", "datasets": ["local_docs_t2t"]},
    "defaults": {"train": {"epochs": 1, "batch_size": 8, "max_steps": 2, "eval_before": False},
                 "model": {"rank": 4, "pooling": "last", "query_instructions": True}},
    "variants": {"baseline": {"description": "tiny baseline"},
                 "no_hard_negatives": {"paper": "no_hard_negatives", "data": {"hard_negatives": False}}},
}


@pytest.fixture()
def upstream(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A workbench whose storage holds real shared upstream tables (mined with the offline embedder)."""
    home = tmp_path / "var"
    monkeypatch.setenv("GME_DATA_HOME", str(home))
    monkeypatch.setenv("GME_DATA_STORAGE_URL", str(home / "storage"))
    monkeypatch.delenv("GME_DATA_REPORTS_URL", raising=False)
    samples = filtered_samples()
    mined = mine_hard_negatives(samples, None, OfflineEmbedder(ocr=False),
                                MiningConfig(k=4, min_negatives=0, stage="hard_negatives")).table
    train = build_training_set(mined, TrainingSetConfig(validation_fraction=0.15)).table
    generated = pd.DataFrame({"id": ["gq-1"], "model": ["offline-rules@v1"]})
    for asset, part, df in (("filtered_samples", SHARD, samples), ("generated_queries", SHARD, generated),
                            ("hard_negatives", "__all__", mined), ("training_set", "__all__", train)):
        (home / "storage" / asset).mkdir(parents=True, exist_ok=True)
        df.to_parquet(home / "storage" / asset / f"{part}.parquet")
    return home


def _definitions(grid_file: Path) -> dg.Definitions:
    grid_defs = build_grid_definitions(grid_file)
    upstream = [dg.AssetSpec("filtered_samples", partitions_def=source_shards),
                dg.AssetSpec("generated_queries", partitions_def=source_shards),
                dg.AssetSpec("hard_negatives"), dg.AssetSpec("training_set")]
    return dg.Definitions(assets=[*upstream, grid_defs.experiment_grid, grid_defs.ablation_report],
                          jobs=[grid_defs.experiment_grid_job, grid_defs.ablation_report_job],
                          resources=build_resources())


def _materialize(defs: dg.Definitions, instance: dg.DagsterInstance, variant: str) -> dict:
    res = defs.resolve_job_def("experiment_grid_job").execute_in_process(instance=instance, partition_key=variant)
    assert res.success
    [mat] = res.asset_materializations_for_node("experiment_grid")
    return {k: getattr(v, "value", v) for k, v in mat.metadata.items()}


def test_adding_a_variant_trains_only_that_variant(upstream: Path, tmp_path: Path) -> None:
    grid_file = tmp_path / "grid.yaml"
    grid_file.write_text(yaml.safe_dump(GRID))
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(source_shards.name, [SHARD])
    defs = _definitions(grid_file)

    first = {v: _materialize(defs, instance, v) for v in ("baseline", "no_hard_negatives")}
    for meta in first.values():
        assert (meta["n_trained"], meta["train_cache_hits"], meta["eval_cache_hits"]) == (2, 0, 0)
    assert first["baseline"]["recomputed_inputs"] == []
    assert first["no_hard_negatives"]["recomputed_inputs"] == ["negatives dropped"]
    store = upstream / "experiments" / "store"
    assert len([p for p in (store / "models").iterdir() if p.is_dir()]) == 4

    # the operator adds a variant and reloads: the grid re-runs, only the new variant trains
    grid = {**GRID, "variants": {**GRID["variants"], "adapter_r16": {"paper": "lora_rank", "model": {"rank": 16}}}}
    grid_file.write_text(yaml.safe_dump(grid))
    defs = _definitions(grid_file)
    second = {v: _materialize(defs, instance, v) for v in ("baseline", "no_hard_negatives", "adapter_r16")}
    for v in ("baseline", "no_hard_negatives"):
        assert (second[v]["n_trained"], second[v]["train_cache_hits"], second[v]["eval_cache_hits"]) == (0, 2, 2)
        assert second[v]["mean_score"] == first[v]["mean_score"]
    assert (second["adapter_r16"]["n_trained"], second["adapter_r16"]["train_cache_hits"]) == (2, 0)
    assert len([p for p in (store / "models").iterdir() if p.is_dir()]) == 6

    shards = pd.read_parquet(upstream / "storage" / "experiment_grid" / "adapter_r16.parquet")
    assert set(shards["seed"]) == {0, 1} and set(shards["dataset"]) == {"local_docs_t2t"}
    assert shards["score"].between(0, 100).all()

    res = defs.resolve_job_def("ablation_report_job").execute_in_process(instance=instance)
    assert res.success
    [mat] = res.asset_materializations_for_node("ablation_report")
    url = mat.metadata["report_url"].value
    page = Path(url.removeprefix("file://")).read_text()
    assert url.startswith("file://") and "adapter_r16" in page and "no_hard_negatives" in page and "-0.60" in page
    assert mat.metadata["variants"].value == 3
