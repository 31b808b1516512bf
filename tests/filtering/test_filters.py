"""filtered_samples: GME's filters drop planted bad samples for the right reason; settings matter."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from PIL import Image

from gme_data.errors import InvalidInputError
from gme_data.filtering import FILTER_REASONS, SAMPLE_COLUMNS, FilterConfig, filter_samples, resolve_threshold
from gme_data.lineage import LineageStore
from tests.filtering.sample import GOOD, PLANTED


def _verdicts(result, fused_table: pd.DataFrame) -> dict[tuple[str, str], str]:
    """(generated query id, combination) -> "kept" or the drop reason."""
    by_fused = {r["id"]: (r["query_id"], r["combination"]) for r in fused_table.to_dict("records")}
    out = {}
    for rec in result.lineage.records:
        (fid,) = [e.parent_id for e in result.lineage.edges if e.child_id == rec.record_id]
        out[by_fused[fid]] = rec.reason if rec.status == "dropped" else "kept"
    return out


def test_good_pairs_survive_and_planted_ones_drop_for_the_right_reason(fused, filtered):
    verdicts = _verdicts(filtered, fused.table)
    for qid in GOOD:
        combos = [c for (q, c) in verdicts if q == qid]
        assert combos and all(verdicts[(qid, c)] == "kept" for c in combos), (qid, verdicts)
    for qid, (_, reason) in PLANTED.items():
        combos = [c for (q, c) in verdicts if q == qid]
        assert combos and all(verdicts[(qid, c)] == reason for c in combos), (qid, reason, verdicts)

    t = filtered.table
    assert list(t.columns) == list(SAMPLE_COLUMNS)
    assert set(t["combination"]) == {"IT->T", "IT->IT", "T->T", "T->I"}
    assert t["instruction"].notna().all() and t["id"].is_unique
    fused_row = t[t["source_id"] == "q-cat-fused"].iloc[0]
    assert fused_row["query_image"].endswith("cat_full.png") and fused_row["consistency_rank"] == 1
    assert fused_row["instruction"] == "Find a text that answers the question about the given image."


def test_drop_records_keep_reason_score_and_evidence(filtered):
    dropped = {r.payload["query_text"]: r for r in filtered.lineage.records if r.status == "dropped"}
    wrong = dropped["a tabby cat looking to the side"]
    assert wrong.payload["filter"] == "image_score" and wrong.score < 0.2 and wrong.payload["threshold"] == 0.2
    unrelated = dropped["Which antibiotic did Alexander Fleming discover in 1928?"]
    assert unrelated.payload["filter"] == "consistency" and unrelated.score > 20
    assert unrelated.payload["top_k"] == 20 and unrelated.payload["corpus_size"] == 31
    near = dropped["What were domesticated horses used for ?"]
    assert near.reason == "near_duplicate" and near.payload["text_cos"] >= 0.95 and near.payload["duplicate_of"]
    leak = dropped["Is coffee brewed from roasted coffee beans?"]
    assert leak.payload["answer"] == "roasted coffee beans"


def test_report_counts_quantiles_and_gallery(filtered, fused):
    rep = filtered.report
    n_in = len(fused.table)
    assert rep.n_in == n_in and rep.n_kept == len(filtered.table)
    assert rep.fraction_kept == pytest.approx(rep.n_kept / n_in, abs=1e-4)
    assert rep.drops_by_filter == {"image_score": 1, "consistency": 1, "dedup": 2, "rules": 3}
    assert rep.drops_by_reason == {"entity_leak": 2, "image_score_below_threshold": 1,
                                   "consistency_rank_above_k": 1, "duplicate_pair": 1, "near_duplicate": 1,
                                   "answer_leak": 1}
    assert sum(rep.drops_by_filter.values()) + rep.n_kept == n_in
    for reason in rep.drops_by_reason:
        assert any(reason in reasons for reasons in FILTER_REASONS.values())
    assert rep.scores["image_score"]["n"] == fused.table["image_score"].notna().sum()
    assert rep.scores["image_score_kept"]["q0"] >= 0.2
    assert rep.scores["consistency_rank"]["q50"] == 1
    assert rep.thresholds == {"offline-minilm-mobilenetv2": 0.2}
    assert rep.gallery and rep.gallery[0]["query_image"] is not None
    assert all(set(g) >= {"query_text", "query_image", "combination"} for g in rep.gallery)
    assert rep.drop_examples["answer_leak"][0]["query_text"] == "Is coffee brewed from roasted coffee beans?"
    assert rep.to_metadata()["n_kept"] == rep.n_kept


def test_image_score_threshold_setting(fused, candidates, retriever):
    low = filter_samples(fused.table, candidates, FilterConfig(image_score_thresholds={"default": 0.1}),
                         text_retriever=retriever)
    assert "q-tabby-t2i" in set(low.table["source_id"])  # the wrong image now passes
    per_model = FilterConfig(image_score_thresholds={"offline-minilm-mobilenetv2": 0.45, "default": 0.2})
    strict = filter_samples(fused.table, candidates, per_model, text_retriever=retriever)
    kept = set(strict.table["source_id"])
    assert "q-cat-fused" in kept  # ~0.61
    assert not kept & {"q-coffee-fused", "q-horse-fused", "q-coffee-t2i", "q-tabby-t2i"}  # 0.15 .. 0.42
    assert strict.report.thresholds == {"offline-minilm-mobilenetv2": 0.45}


def test_consistency_top_k_setting(fused, candidates, retriever):
    wide = filter_samples(fused.table, candidates, FilterConfig(consistency_top_k=31), text_retriever=retriever)
    assert "q-violin-unrelated" in set(wide.table["source_id"])
    assert wide.report.drops_by_filter["consistency"] == 0
    tight = filter_samples(fused.table, candidates, FilterConfig(consistency_top_k=1), text_retriever=retriever)
    assert tight.report.drops_by_filter["consistency"] >= 1
    assert all(r <= 1 for r in tight.table["consistency_rank"].dropna())
    # fused samples are checked with their original query (naming the entity) unless told otherwise
    rewritten = filter_samples(fused.table, candidates, FilterConfig(fused_consistency_query="rewritten",
                                                                     consistency_top_k=31), text_retriever=retriever)

    def fused_scores(res):
        t = res.table[res.table["combination"] == "IT->T"].set_index("source_id")
        return t["consistency_score"]

    orig, generic = fused_scores(wide), fused_scores(rewritten)
    assert (generic.loc[orig.index] < orig).all()  # "this animal" matches the paragraph less than "a cat"


def test_near_duplicate_images_by_phash(tmp_path, images, retriever):
    jpeg = tmp_path / "cat.jpg"
    Image.open(images["cat_full"]).resize((280, 210)).save(jpeg, quality=80)  # same photo, other bytes
    copy = tmp_path / "cat_copy.png"
    shutil.copy(images["cat_full"], copy)
    q = "How many hours a day does this animal sleep?"
    base = {"combination": "IT->T", "pos_id": "c-cat", "pos_text": "Cat The domestic cat sleeps a lot.",
            "pos_image": None, "image_score": 0.6, "embedder": "x", "answer": None, "entity": "cat",
            "original_query": "How many hours a day does a cat sleep?"}
    rows = [
        {**base, "id": "f1", "query_id": "g1", "query_text": q, "query_image": images["cat_full"]},
        {**base, "id": "f2", "query_id": "g2", "query_text": q, "query_image": str(copy)},  # exact (same bytes)
        {**base, "id": "f3", "query_id": "g3", "query_text": q.replace("a day", "per day"), "query_image": str(jpeg)},
        {**base, "id": "f4", "query_id": "g4", "query_text": q, "query_image": images["coffee"]},  # other image
        {**base, "id": "f5", "query_id": "g5", "query_text": q, "query_image": images["cat_full"],
         "pos_id": "c-tabby"},  # other positive
    ]
    res = filter_samples(pd.DataFrame(rows), None, FilterConfig(order=("dedup",)), text_retriever=retriever)
    reasons = [(r.payload["query_text"], r.reason) for r in res.lineage.records]
    assert [r.reason for r in res.lineage.records] == [None, "duplicate_pair", "near_duplicate", None, None]
    near = res.lineage.records[2]
    assert near.payload["phash_distance"] <= 4 and near.payload["text_cos"] >= 0.95, reasons
    assert near.payload["duplicate_of"] == "f1"
    strict = filter_samples(pd.DataFrame(rows), None, FilterConfig(order=("dedup",), dedup_phash_max_distance=0,
                                                                   dedup_text_threshold=0.999),
                            text_retriever=retriever)
    assert [r.reason for r in strict.lineage.records] == [None, "duplicate_pair", None, None, None]


def test_length_rules_and_filter_order(retriever):
    rows = [
        {"id": "f1", "query_id": "g1", "combination": "T->T", "query_text": "Cats?", "query_image": None,
         "pos_id": "p1", "pos_text": "Cats are small mammals.", "pos_image": None, "image_score": None,
         "answer": None},
        {"id": "f2", "query_id": "g2", "combination": "T->T", "query_text": "Why " + "really " * 120 + "?",
         "query_image": None, "pos_id": "p1", "pos_text": "Cats are small mammals.", "pos_image": None,
         "image_score": None, "answer": None},
        {"id": "f3", "query_id": "g3", "combination": "T->T", "query_text": "What kind of animal is a cat?",
         "query_image": None, "pos_id": "p1", "pos_text": "Cats are small mammals.", "pos_image": None,
         "image_score": None, "answer": "a"},  # a 1-char answer is not checked for leaks
    ]
    res = filter_samples(pd.DataFrame(rows), None, FilterConfig(order=("rules",)), text_retriever=retriever)
    assert [r.reason for r in res.lineage.records] == ["query_too_short", "query_too_long", None]
    assert res.lineage.records[0].score == 5.0
    relaxed = filter_samples(pd.DataFrame(rows), None, FilterConfig(order=("rules",), min_query_chars=1,
                                                                     max_query_chars=2000), text_retriever=retriever)
    assert relaxed.report.n_kept == 3

    # order matters: with dedup first the exact duplicate is judged a duplicate, with rules first a leak
    dup = [{**rows[2], "id": f"d{i}", "answer": "animal"} for i in range(2)]
    first_dedup = filter_samples(pd.DataFrame(dup), None, FilterConfig(order=("dedup", "rules")),
                                 text_retriever=retriever)
    assert [r.reason for r in first_dedup.lineage.records] == ["answer_leak", "duplicate_pair"]
    first_rules = filter_samples(pd.DataFrame(dup), None, FilterConfig(order=("rules", "dedup")),
                                 text_retriever=retriever)
    assert [r.reason for r in first_rules.lineage.records] == ["answer_leak", "answer_leak"]


def test_thresholds_and_config_validation():
    th = {"default": 0.2, "offline-minilm-mobilenetv2": 0.25, "Alibaba-NLP/gme-Qwen2-VL-2B-Instruct": 0.3,
          "clip": 0.22}
    assert resolve_threshold(th, "offline-minilm-mobilenetv2") == 0.25
    assert resolve_threshold(th, "/models/gme-Qwen2-VL-2B-Instruct") == 0.3
    assert resolve_threshold(th, "clip-vit-b32") == 0.22
    assert resolve_threshold(th, "something-else") == 0.2
    assert resolve_threshold({"x": 0.5}, "y") is None
    assert resolve_threshold(0.3, "anything") == 0.3
    for bad in ({"consistency_top_k": 0}, {"order": ("image_score", "bogus")}, {"dedup_text_threshold": 1.5},
                {"min_query_chars": 10, "max_query_chars": 5}, {"fused_consistency_query": "both"},
                {"image_score_thresholds": {"default": "high"}}):
        with pytest.raises(InvalidInputError):
            FilterConfig(**bad)
    with pytest.raises(InvalidInputError, match="missing column"):
        filter_samples(pd.DataFrame({"id": ["x"]}))


def test_lineage_walks_from_sample_to_generated_query(tmp_path, fused, filtered, pool):
    store = LineageStore(tmp_path / "lineage.duckdb")
    store.write_stage("image_pool", None, "run-1", pool.lineage())
    store.write_stage("fused_queries", None, "run-1", fused.lineage)
    store.write_stage("filtered_samples", None, "run-1", filtered.lineage)
    sample_id = filtered.table.loc[filtered.table["source_id"] == "q-cat-fused", "id"].iloc[0]
    trace = store.trace(sample_id)
    assert {"q-cat-fused", "c-cat"} <= set(trace["parent_id"])
    assert any(str(p).startswith("poolimg-") for p in trace["parent_id"])
    drops = store.drops("filtered_samples").set_index("reason")["n"].to_dict()
    assert drops == filtered.report.drops_by_reason
