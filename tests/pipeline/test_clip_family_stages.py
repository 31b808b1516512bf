"""The synthesis stages with a CLIP-family embedder chosen by configuration alone (a tiny CLIP folder)."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pandas as pd

from gme_data.lineage import LineageStore
from gme_data.retrieval.clip_tiny import save_tiny_clip_family


def test_fused_queries_generates_entity_images_and_reuses_them(workbench: Path, tmp_path: Path, monkeypatch) -> None:
    from dagster_project.definitions import defs, register_shards
    from tests.support.images_server import ImagesServer

    monkeypatch.setenv("OPENAI_API_KEY", "sk-loopback-images-0000")
    folder = save_tiny_clip_family(tmp_path / "tiny_clip", "clip", seed=2)
    instance = dg.DagsterInstance.ephemeral()
    register_shards(instance)
    job = defs.resolve_job_def("synthesis_job")
    with ImagesServer() as server:
        fused_cfg = {"config": {"generate_entity_images": True, "image_gen_base_url": server.base_url,
                                "image_gen_model": "flux-test", "image_gen_size": "64x64",
                                "image_gen_threshold": 2.0, "image_gen_price_per_image": 0.01}}
        run_config = {"resources": {"embedder": {"config": {"model": str(folder)}}},
                      "ops": {"fused_queries": fused_cfg}}
        res = job.execute_in_process(instance=instance, partition_key="sample-wiki_01", run_config=run_config,
                                     asset_selection=[dg.AssetKey(k) for k in ("raw_corpus", "candidates",
                                                                               "generated_queries", "fused_queries")])
        assert res.success
        n = len(server.requests)
        fused = pd.read_parquet(workbench / "storage" / "fused_queries" / "sample-wiki_01.parquet")
        generated = fused[fused["image_origin"] == "generated"]
        assert n > 0 and generated["query_image"].nunique() == n
        assert all(Path(p).is_relative_to(workbench / "images") for p in generated["query_image"])
        mat = next(e for e in res.get_asset_materialization_events()
                   if e.asset_key == dg.AssetKey("fused_queries")).materialization.metadata
        counts = mat["entity_images"].data
        assert counts["generated"] == len(set(generated["query_id"])) and counts["retrieved"] == 0
        assert mat["image_generation"].data["cost"] == round(0.01 * n, 6)
        # lineage: the generated image's record (prompt, model, seed) is the row's parent
        store = LineageStore(workbench / "lineage.duckdb")
        row = generated.iloc[0]
        image_rec = store.record(row["query_image_id"])
        assert list(image_rec["kind"]) == ["generated_image"]
        payload = json.loads(image_rec["payload"].iloc[0])
        assert payload["image_origin"] == "generated" and payload["model"] == "flux-test" and payload["seed"] == 0
        assert payload["prompt"] in [r["body"]["prompt"] for r in server.requests]
        assert row["query_image_id"] in set(store.trace(row["id"])["parent_id"])
        report = next((workbench / "reports").glob("*/fused_queries__sample-wiki_01.html")).read_text()
        assert "entity_images" in report and "generated" in report
        # re-materializing fused_queries sends no new request: every image comes from the cache
        res2 = job.execute_in_process(instance=instance, partition_key="sample-wiki_01", run_config=run_config,
                                      asset_selection=[dg.AssetKey("fused_queries")])
        assert res2.success and len(server.requests) == n
        again = pd.read_parquet(workbench / "storage" / "fused_queries" / "sample-wiki_01.parquet")
        assert again["query_image"].tolist() == fused["query_image"].tolist()


def test_whole_graph_with_a_clip_folder_by_configuration(workbench: Path, tmp_path: Path) -> None:
    """The graph with a CLIP folder as the embedder: the pool, fused_queries and filtered_samples use it
    (GME's 0.2 cut), an adapter trains over it and umrb_eval scores the trained model beside the CLIP-SF
    base, which the report labels as computed here, beside the published CLIP-SF row."""
    from dagster_project.definitions import defs, register_shards

    folder = save_tiny_clip_family(tmp_path / "tiny_clip", "clip", seed=2)
    resources = {"embedder": {"config": {"model": str(folder)}}}
    instance = dg.DagsterInstance.ephemeral()
    register_shards(instance)
    res = defs.resolve_job_def("synthesis_job").execute_in_process(
        instance=instance, partition_key="sample-wiki_01", run_config={"resources": resources})
    assert res.success
    # the pool and fused_queries use the CLIP embedder by its name
    name = f"clip:{folder}"
    manifest = json.loads((workbench / "image_pool" / "manifest.json").read_text())
    assert manifest["embedder"]["name"] == name and manifest["embedder"]["dim"] == 24
    assert manifest["embedder"]["settings"] == {"dtype": "float32", "max_length": 16}
    fused = pd.read_parquet(workbench / "storage" / "fused_queries" / "sample-wiki_01.parquet")
    assert set(fused["embedder"]) == {name}
    # filtered_samples: GME's CLIP cut, 0.2, resolved from the embedder's name, drops exactly the rows below it
    drops = LineageStore(workbench / "lineage.duckdb").drops("filtered_samples")
    below = int(drops.set_index("reason")["n"].get("image_score_below_threshold", 0))
    assert below == int((fused["image_score"].dropna() < 0.2).sum()) > 0
    train_cfg = {"config": {"epochs": 1}}
    res = defs.resolve_job_def("training_eval_job").execute_in_process(instance=instance, run_config={
        "resources": resources, "ops": {
            "gme_model_stage1": train_cfg, "gme_model": train_cfg,
            "umrb_eval": {"config": {"datasets": ["local_photos_t2i"]}}}})
    assert res.success
    model = res.output_for_node("gme_model")
    manifest = json.loads((Path(model["model_dir"]) / "manifest.json").read_text())
    assert manifest["kind"] == "adapter" and manifest["base"] == str(folder)
    scores = pd.read_parquet(workbench / "storage" / "umrb_eval" / "__all__.parquet")
    assert set(scores["model"]) == {"gme_model", "base"}
    mat = next(e for e in res.get_asset_materialization_events()
               if e.asset_key == dg.AssetKey("umrb_eval")).materialization.metadata
    lines = mat["report"].value.splitlines()
    ours = next(i for i, line in enumerate(lines) if line.startswith("| CLIP-SF (workbench: base) |"))
    assert lines[ours + 1].startswith("| CLIP-SF (UniIR) (published) |")
