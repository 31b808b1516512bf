"""fused_queries: entity image retrieval, the selection rules, pass-through styles, lineage."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from gme_data.errors import InvalidInputError
from gme_data.filtering import FUSED_COLUMNS, FusedConfig, build_fused_queries


def _rows(table: pd.DataFrame, query_id: str) -> dict[str, dict]:
    return {r["combination"]: r for r in table[table["query_id"] == query_id].to_dict("records")}


def test_fused_rows_every_combination_and_scores(fused, pool, images):
    t = fused.table
    assert list(t.columns) == list(FUSED_COLUMNS)
    assert set(t["combination"]) == {"IT->T", "IT->IT", "T->T", "T->I"}
    assert t["id"].is_unique

    cat = _rows(t, "q-cat-fused")
    # top1 is the pool's full cat photo; the paragraph has its own (cropped) photo -> IT->T and IT->IT
    assert set(cat) == {"IT->T", "IT->IT"}
    assert cat["IT->T"]["query_image"] == images["cat_full"]
    assert cat["IT->T"]["query_text"] == "How many hours a day does this animal sleep?"
    assert cat["IT->T"]["pos_text"].startswith("Cat The domestic cat") and cat["IT->T"]["pos_image"] is None
    assert cat["IT->IT"]["pos_image"] == images["cat_crop"]
    assert cat["IT->T"]["retrieved_ids"][0] == pool.id_for_image(images["cat_full"])
    assert len(cat["IT->T"]["retrieved_ids"]) == len(cat["IT->T"]["retrieved_scores"]) == 5
    assert cat["IT->T"]["image_score"] == pytest.approx(cat["IT->T"]["retrieved_scores"][0])
    assert cat["IT->T"]["source_image_rank"] == 2  # its own photo came second

    # coffee: the retrieved image IS the paragraph's image -> IT->T only (no IT->IT with identical images)
    coffee = _rows(t, "q-coffee-fused")
    assert set(coffee) == {"IT->T"} and coffee["IT->T"]["query_image"] == images["coffee"]

    # pass-through styles
    t2t = _rows(t, "q-camera-t2t")["T->T"]
    assert t2t["query_image"] is None and t2t["pos_image"] is None and math.isnan(t2t["image_score"])
    t2i = _rows(t, "q-coffee-t2i")["T->I"]
    assert t2i["pos_text"] is None and t2i["pos_image"] == images["coffee"] and t2i["image_score"] > 0.3
    wrong = _rows(t, "q-tabby-t2i")["T->I"]
    assert wrong["image_score"] < 0.2  # caption of a cat vs the paragraph's coffee photo

    assert fused.report.by_combination == t["combination"].value_counts().sort_index().to_dict()
    assert fused.report.source_image_hit_rate == 1.0 and fused.report.pool_size == len(pool)


def test_lineage_parents_are_query_candidate_and_pool_image(fused, pool, images):
    rec = {r.record_id: r for r in fused.lineage.records}
    cat_row = _rows(fused.table, "q-cat-fused")["IT->T"]
    parents = [e.parent_id for e in fused.lineage.edges if e.child_id == cat_row["id"]]
    assert parents == ["q-cat-fused", "c-cat", pool.id_for_image(images["cat_full"])]
    assert rec[cat_row["id"]].payload["retrieved_ids"] == cat_row["retrieved_ids"]
    t2t_row = _rows(fused.table, "q-camera-t2t")["T->T"]
    assert [e.parent_id for e in fused.lineage.edges if e.child_id == t2t_row["id"]] == ["q-camera-t2t", "c-camera"]


def test_prefer_source_image_and_top_k(generated_queries, candidates, pool, images):
    prefer = build_fused_queries(generated_queries, candidates, pool, FusedConfig(rule="prefer_source_image"))
    cat = _rows(prefer.table, "q-cat-fused")
    # the paragraph's own photo is in the top 5 -> it becomes the query image, so there is no IT->IT
    assert set(cat) == {"IT->T"} and cat["IT->T"]["query_image"] == images["cat_crop"]
    assert cat["IT->T"]["image_score"] == pytest.approx(cat["IT->T"]["retrieved_scores"][1])

    narrow = build_fused_queries(generated_queries, candidates, pool,
                                 FusedConfig(rule="prefer_source_image", top_k=1))
    cat = _rows(narrow.table, "q-cat-fused")
    # with top-1 the own photo is not retrieved -> fall back to top1 (and IT->IT comes back)
    assert set(cat) == {"IT->T", "IT->IT"} and cat["IT->T"]["query_image"] == images["cat_full"]
    assert all(len(ids) == 1 for ids in narrow.table.loc[narrow.table["combination"] == "IT->T", "retrieved_ids"])
    assert cat["IT->T"]["source_image_rank"] is pd.NA or pd.isna(cat["IT->T"]["source_image_rank"])


def test_top1_above_threshold_drops_weak_images(generated_queries, candidates, pool):
    cfg = FusedConfig(rule="top1_above_threshold",
                      image_score_thresholds={"offline-minilm-mobilenetv2": 0.5, "default": 0.2})
    res = build_fused_queries(generated_queries, candidates, pool, cfg)
    # cat scores ~0.61; coffee ~0.42 and horse ~0.40 fall below 0.5
    kept = set(res.table.loc[res.table["combination"].str.startswith("IT"), "query_id"])
    assert kept == {"q-cat-fused", "q-cat-entity"}
    drops = {r.payload["query_id"]: r for r in res.lineage.records if r.status == "dropped"}
    assert set(drops) == {"q-coffee-fused", "q-horse-fused"}
    assert {d.reason for d in drops.values()} == {"no_image_above_threshold"}
    assert all(d.score < 0.5 for d in drops.values())
    assert res.report.drops == {"no_image_above_threshold": 2}
    # the default threshold 0.2 keeps all of them
    res = build_fused_queries(generated_queries, candidates, pool, FusedConfig(rule="top1_above_threshold"))
    assert res.report.drops == {}


def test_drops_for_bad_generated_rows(candidates, pool):
    gq = pd.DataFrame([
        {"id": "g1", "candidate_id": "c-missing", "style": "t2t", "query": "What is this?"},
        {"id": "g2", "candidate_id": "c-cat", "style": "fused", "query": "Why do cats purr?", "entity": "cat",
         "rewritten_query": None},
        {"id": "g3", "candidate_id": "c-violin", "style": "t2i", "query": "a violin on a table"},
        {"id": "g4", "candidate_id": "c-cat", "style": "i2i", "query": "x"},
        {"id": "g5", "candidate_id": "c-cat", "style": "t2t", "query": "  "},
    ])
    res = build_fused_queries(gq, candidates, pool)
    assert res.table.empty
    assert {r.payload["query_id"]: r.reason for r in res.lineage.records} == {
        "g1": "unknown_candidate", "g2": "missing_rewritten_query", "g3": "candidate_has_no_image",
        "g4": "unsupported_style", "g5": "missing_query"}
    with pytest.raises(InvalidInputError, match="missing column"):
        build_fused_queries(gq.drop(columns=["style"]), candidates, pool)
    with pytest.raises(InvalidInputError, match="rule"):
        FusedConfig(rule="best")
    with pytest.raises(InvalidInputError, match="top_k"):
        FusedConfig(top_k=0)
    with pytest.raises(InvalidInputError, match="query_template"):
        FusedConfig(query_template="{caption}")
