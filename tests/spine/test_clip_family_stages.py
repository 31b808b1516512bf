"""The synthesis stages with a CLIP-family embedder chosen by configuration alone (a tiny CLIP folder)."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pandas as pd

from gme_data.lineage import LineageStore
from gme_data.retrieval.clip_tiny import save_tiny_clip_family


def test_synthesis_with_a_clip_folder_uses_clip_sf_and_gme_cut(workbench: Path, tmp_path: Path) -> None:
    from dagster_project.definitions import defs, register_shards

    folder = save_tiny_clip_family(tmp_path / "tiny_clip", "clip", seed=2)
    instance = dg.DagsterInstance.ephemeral()
    register_shards(instance)
    job = defs.resolve_job_def("synthesis_job")
    res = job.execute_in_process(instance=instance, partition_key="sample-wiki_01", raise_on_error=False,
                                 run_config={"resources": {"embedder": {"config": {"model": str(folder)}}}})
    assert res.success
    name = f"clip:{folder}"
    manifest = json.loads((workbench / "image_pool" / "manifest.json").read_text())
    assert manifest["embedder"]["name"] == name and manifest["embedder"]["dim"] == 24
    assert manifest["embedder"]["settings"]["fusion"] == "clip-sf"
    fused = pd.read_parquet(workbench / "storage" / "fused_queries" / "sample-wiki_01.parquet")
    assert set(fused["embedder"]) == {name}
    drops = LineageStore(workbench / "lineage.duckdb").drops("filtered_samples")
    below = int(drops.set_index("reason")["n"].get("image_score_below_threshold", 0))
    scored = fused["image_score"].dropna()
    # GME's CLIP cut, 0.2, resolved from the embedder's name: exactly the rows scoring below it are dropped
    assert below == int((scored < 0.2).sum()) > 0
