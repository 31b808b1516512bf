"""fused_queries with generated entity images from a real loopback images endpoint.

Generation fills in when the pool is empty or its best image scores below the threshold; generated
images are scored, stored content-addressed, recorded in lineage (prompt, model, seed) and cached,
so building the table again sends no request.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gme_data.filtering import build_fused_queries
from gme_data.generation.entity_images import EntityImageGenerator, ImageGenConfig
from gme_data.images import ImageStore
from gme_data.pool import ImagePool, PoolConfig
from tests.support.images_server import ImagesServer


def generator(server: ImagesServer, root: Path, **overrides) -> EntityImageGenerator:
    fields = {"enabled": True, "base_url": server.base_url, "model": "flux-test", "size": "64x64", "seed": 3,
              "price_per_image": 0.05, "backoff_base_s": 0.01, **overrides}
    return EntityImageGenerator(ImageGenConfig(**fields), ImageStore(root / "images"), root / "cache",
                                sleep=lambda s: None, api_key="test-key-000000")


def fused_ids(table, origin: str) -> set[str]:
    return set(table[table["image_origin"] == origin]["query_id"])


def test_empty_pool_gets_generated_images_with_lineage_and_cache(tmp_path, embedder, generated_queries,
                                                                  candidates):
    empty = ImagePool(tmp_path / "pool", embedder, PoolConfig(show_progress=False))
    with ImagesServer() as server:
        first = build_fused_queries(generated_queries, candidates, empty, generator=generator(server, tmp_path))
        n_requests = len(server.requests)
        t = first.table
        gen = t[t["image_origin"] == "generated"]
        assert len(gen) and set(gen["image_rule"]) == {"generated"}
        assert "empty_pool" not in first.report.drops
        # one request per distinct (entity, caption); each row's image is a stored PNG scored by the embedder
        assert n_requests == gen["query_image"].nunique() == first.report.image_generation["generated"]
        assert all(Path(p).is_file() and Path(p).parent.parent == tmp_path / "images" for p in gen["query_image"])
        assert gen["image_score"].between(-1.0, 1.0).all()
        prompts = [r["body"]["prompt"] for r in server.requests]
        assert any(p.startswith("A photograph of cat. ") for p in prompts)
        # lineage: a generated_image record (prompt, model, seed, size) that the row points at
        rec = {r.record_id: r for r in first.lineage.records}
        row = gen.iloc[0]
        image_rec = rec[row["query_image_id"]]
        assert image_rec.kind == "generated_image"
        assert image_rec.payload["image_origin"] == "generated" and image_rec.payload["model"] == "flux-test"
        assert image_rec.payload["seed"] == 3 and image_rec.payload["prompt"] in prompts
        assert row["query_image_id"] in [e.parent_id for e in first.lineage.edges if e.child_id == row["id"]]
        assert rec[row["id"]].payload["image_origin"] == "generated"
        assert first.report.entity_images == {"retrieved": 0, "generated": len(set(gen["query_id"])),
                                              "generation_failed": 0}
        assert first.report.image_generation["cost"] == pytest.approx(0.05 * n_requests)

        # a re-materialization: same table, no new request, every image from the cache
        again = build_fused_queries(generated_queries, candidates, empty, generator=generator(server, tmp_path))
        assert len(server.requests) == n_requests
        assert again.table["query_image"].tolist() == t["query_image"].tolist()
        assert again.report.image_generation["cache_hits"] == n_requests
        assert again.report.image_generation["generated"] == 0 and again.report.image_generation["cost"] == 0.0


def test_threshold_decides_and_failures_fall_back_to_retrieval(tmp_path, pool, fused, generated_queries,
                                                               candidates):
    with ImagesServer() as server:
        # threshold below every score: nothing generated, no request, same images as without a generator
        low = build_fused_queries(generated_queries, candidates, pool,
                                  generator=generator(server, tmp_path, threshold=-1.0))
        assert not server.requests and fused_ids(low.table, "generated") == set()
        assert low.table["query_image"].tolist() == fused.table["query_image"].tolist()
        # above every score: every fused query asks; the first answer is not an image -> that entity keeps
        # its retrieved image and is counted as a failed generation
        server.script(["bad_image"])
        high = build_fused_queries(generated_queries, candidates, pool,
                                   generator=generator(server, tmp_path, threshold=2.0))
    rep = high.report
    assert rep.entity_images["generation_failed"] >= 1 and rep.entity_images["generated"] >= 1
    assert rep.image_generation["failures"] == {"unreadable_image": 1}
    retrieved = high.table[high.table["image_origin"] == "retrieved"]
    assert len(retrieved) and set(retrieved["image_rule"]) == {"top1"}
    assert fused_ids(high.table, "retrieved") | fused_ids(high.table, "generated") == fused_ids(fused.table,
                                                                                                  "retrieved")


def test_off_by_default(tmp_path, pool, generated_queries, candidates):
    assert ImageGenConfig().enabled is False
    with ImagesServer() as server:
        res = build_fused_queries(generated_queries, candidates, pool,
                                  generator=generator(server, tmp_path, enabled=False, threshold=2.0))
        assert not server.requests
    assert res.report.image_generation is None and res.report.entity_images["generated"] == 0
