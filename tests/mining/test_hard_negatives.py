"""Hard-negative mining with an embedder whose scores are known exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from gme_data.errors import InvalidInputError
from gme_data.mining import MiningConfig, mine_hard_negatives, pool_from_samples


class ScoreEmbedder:
    """Queries embed to e0 (or e2 when the text starts with 'other'); a candidate embeds so that its
    dot product with e0 is a chosen score."""

    name = "score-fake"
    dim = 4
    modalities = ("text", "image", "fused")

    def __init__(self, scores: dict[str, float]):
        self.scores = scores
        self.calls: list[tuple[str, str | None, int]] = []

    def _key(self, it):
        return it.text if it.text is not None else str(it.image)

    def encode(self, items, role="query", instruction=None, batch_size=32, show_progress=False):
        self.calls.append((role, instruction, len(items)))
        out = np.zeros((len(items), 4), np.float32)
        for i, it in enumerate(items):
            if role == "query":
                out[i] = [0, 0, 1, 0] if (it.text or "").startswith("other") else [1, 0, 0, 0]
            else:
                s = self.scores[self._key(it)]
                out[i] = [s, np.sqrt(max(0.0, 1 - s * s)), 0, 0]
        return out


def _sample(sid, pos_id, pos_text, query="find it", pos_image=None, instruction="Find the passage."):
    return dict(id=sid, combination="T->T", instruction=instruction, query_text=query, query_image=None,
                pos_id=pos_id, pos_text=pos_text, pos_image=pos_image, source_id=f"src-{sid}")


def _pool(entries):
    return pd.DataFrame([dict(id=i, text=t, image=None) for i, t in entries])


SCORES = {"positive": 0.80, "dup of nothing": 0.5, "near": 0.78, "n1": 0.70, "n2": 0.60, "n3": 0.50,
          "n4": 0.40, "n5": 0.30, "n6": 0.20}


def test_drops_positive_duplicate_and_margin_violators():
    pool = _pool([("p", "positive"), ("p-copy", "positive"), ("near", "near"), ("n1", "n1"), ("n2", "n2"),
                  ("n3", "n3"), ("n4", "n4"), ("n5", "n5"), ("n6", "n6")])
    samples = pd.DataFrame([_sample("s1", "p", "positive")])
    emb = ScoreEmbedder(SCORES)
    res = mine_hard_negatives(samples, pool, emb, MiningConfig(k=3, margin=0.05))
    row = res.table.iloc[0]
    assert list(row.neg_ids) == ["n1", "n2", "n3"]          # p, p-copy (same content), near (0.78 >= 0.75) gone
    assert np.allclose(row.neg_scores, [0.7, 0.6, 0.5], atol=1e-5)
    assert list(row.neg_is_random) == [False] * 3
    assert row.positive_rank == 1
    assert res.stats["false_negatives_removed"] == 1
    assert res.stats["positives_removed"] == 2
    # 7 non-positive candidates considered, one removed as a false negative
    assert res.stats["false_negative_fraction"] == pytest.approx(1 / 7)
    assert res.stats["mean_neg_score"] == pytest.approx(0.6, abs=1e-5)
    # lineage: kept, parents are the negatives, the false negative recorded as a dropped edge
    (rec,) = res.lineage.records
    assert rec.status == "kept" and rec.payload["n_negatives"] == 3
    kept_edges = {e.parent_id for e in res.lineage.edges if e.decision == "kept"}
    fn_edges = {e.parent_id for e in res.lineage.edges if e.decision == "dropped"}
    assert kept_edges == {"n1", "n2", "n3"} and fn_edges == {"near"}
    # query encoded once with the row instruction, candidates without
    assert ("query", "Find the passage.", 1) in emb.calls


def test_wider_margin_and_absolute_cap():
    pool = _pool([("p", "positive"), ("near", "near"), ("n1", "n1"), ("n2", "n2"), ("n3", "n3"),
                  ("n4", "n4"), ("n5", "n5")])
    samples = pd.DataFrame([_sample("s1", "p", "positive")])
    res = mine_hard_negatives(samples, pool, ScoreEmbedder(SCORES), k=2, margin=0.15)
    assert list(res.table.iloc[0].neg_ids) == ["n2", "n3"]   # 0.78 and 0.70 >= 0.65
    res = mine_hard_negatives(samples, pool, ScoreEmbedder(SCORES), k=2, margin=0.0, max_score=0.55)
    assert list(res.table.iloc[0].neg_ids) == ["n3", "n4"]


def test_positive_rank_counts_better_candidates():
    scores = dict(SCORES, positive=0.65)
    pool = _pool([("p", "positive"), ("near", "near"), ("n1", "n1"), ("n2", "n2"), ("n3", "n3")])
    samples = pd.DataFrame([_sample("s1", "p", "positive")])
    res = mine_hard_negatives(samples, pool, ScoreEmbedder(scores), k=1, margin=0.05, min_negatives=1)
    row = res.table.iloc[0]
    assert row.positive_rank == 3                    # near 0.78 and n1 0.70 beat 0.65
    assert list(row.neg_ids) == ["n3"]               # n2 0.60 >= 0.60 is a likely false negative
    assert res.stats["mean_positive_rank"] == 3


def test_random_fill_is_flagged_and_deterministic():
    pool = _pool([("p", "positive"), ("near", "near"), ("n1", "n1"), ("n2", "n2"), ("n3", "n3"),
                  ("n4", "n4"), ("n5", "n5"), ("n6", "n6")])
    samples = pd.DataFrame([_sample("s1", "p", "positive")])
    cfg = MiningConfig(k=4, top_n=2, margin=0.05, seed=3)
    a = mine_hard_negatives(samples, pool, ScoreEmbedder(SCORES), cfg).table.iloc[0]
    b = mine_hard_negatives(samples, pool, ScoreEmbedder(SCORES), cfg).table.iloc[0]
    assert list(a.neg_ids) == list(b.neg_ids)
    assert a.neg_ids[0] == "n1" and list(a.neg_is_random) == [False, True, True, True]
    assert len(set(a.neg_ids)) == 4 and not {"p", "near"} & set(a.neg_ids)


def test_no_negatives_dropped_and_modality_matched(tmp_path):
    img = tmp_path / "a.png"
    Image.new("RGB", (8, 8), "red").save(img)
    scores = dict(SCORES)
    scores[str(img)] = 0.1
    pool = pd.DataFrame([dict(id="p", text="positive", image=None), dict(id="img", text=None, image=str(img))])
    samples = pd.DataFrame([_sample("s1", "p", "positive"), _sample("s2", "p", "positive", query="find again")])
    res = mine_hard_negatives(samples, pool, ScoreEmbedder(scores), k=2, min_negatives=1)
    # the only non-positive candidate is an image: a T->T sample gets no negatives
    assert len(res.table) == 0
    assert res.lineage.drop_counts() == {"no_negatives": 2}
    assert res.stats["n_dropped"] == 2
    # without modality matching the image becomes a negative (random fill disabled, short list allowed)
    res = mine_hard_negatives(samples, pool, ScoreEmbedder(scores), k=2, min_negatives=1,
                              match_modality=False, fill_random=False)
    assert [list(x) for x in res.table.neg_ids] == [["img"], ["img"]]
    assert res.table.iloc[0].neg_images[0] == str(img)
    # min_negatives=0 keeps samples without any usable negative (the trainer fills them randomly)
    res = mine_hard_negatives(samples, pool, ScoreEmbedder(scores), k=2, min_negatives=0)
    assert len(res.table) == 2 and [list(x) for x in res.table.neg_ids] == [[], []]
    assert res.lineage.drop_counts() == {}


def test_too_few_negatives_dropped_by_default_and_second_stage_replaces_columns():
    pool = _pool([("p", "positive"), ("n1", "n1"), ("n2", "n2")])
    samples = pd.DataFrame([_sample("s1", "p", "positive")])
    res = mine_hard_negatives(samples, pool, ScoreEmbedder(SCORES), k=3)
    assert len(res.table) == 0 and res.lineage.drop_counts() == {"too_few_negatives": 1}
    first = mine_hard_negatives(samples, pool, ScoreEmbedder(SCORES), k=2).table
    scores2 = dict(SCORES, n1=0.1)
    second = mine_hard_negatives(first, pool, ScoreEmbedder(scores2), k=2).table
    assert list(second.columns) == list(first.columns)
    assert list(second.iloc[0].neg_ids) == ["n2", "n1"]


def test_pool_from_samples_and_named_errors():
    samples = pd.DataFrame([_sample("s1", "p", "positive"), _sample("s2", "n1", "n1"),
                            _sample("s3", "p", "positive")])
    pool = pool_from_samples(samples)
    assert list(pool.id) == ["p", "n1"]
    res = mine_hard_negatives(samples, None, ScoreEmbedder(SCORES), k=1)
    # s2's only candidate "p" outscores its positive n1: a likely false negative, so s2 is dropped
    assert [list(x) for x in res.table.neg_ids] == [["n1"], ["n1"]]
    assert list(res.table.id) == ["s1", "s3"]
    bad = samples.copy()
    bad.loc[1, "query_text"] = None
    with pytest.raises(InvalidInputError, match="samples row 1"):
        mine_hard_negatives(bad, None, ScoreEmbedder(SCORES), k=1)
    with pytest.raises(InvalidInputError, match="missing columns"):
        mine_hard_negatives(samples.drop(columns=["pos_id"]), None, ScoreEmbedder(SCORES))
    with pytest.raises(InvalidInputError, match="k must be"):
        MiningConfig(k=0)


def test_empty_samples():
    samples = pd.DataFrame(columns=["id", "query_text", "query_image", "pos_id", "pos_text", "pos_image"])
    res = mine_hard_negatives(samples, _pool([("p", "positive")]), ScoreEmbedder(SCORES))
    assert len(res.table) == 0 and "neg_ids" in res.table.columns


def test_index_path_matches_exact_path():
    pool = _pool([("p", "positive"), ("near", "near"), ("n1", "n1"), ("n2", "n2"), ("n3", "n3"),
                  ("n4", "n4"), ("n5", "n5"), ("n6", "n6")])
    samples = pd.DataFrame([_sample("s1", "p", "positive"), _sample("s2", "n6", "n6")])
    exact = mine_hard_negatives(samples, pool, ScoreEmbedder(SCORES), k=3, min_negatives=1)
    indexed = mine_hard_negatives(samples, pool, ScoreEmbedder(SCORES), k=3, min_negatives=1, exact_max_pool=2)
    assert [list(x) for x in exact.table.neg_ids] == [list(x) for x in indexed.table.neg_ids]
    assert exact.stats["mean_positive_rank"] == indexed.stats["mean_positive_rank"]


def test_random_fill_from_a_large_pool():
    scores = dict(SCORES)
    entries = [("p", "positive"), ("n1", "n1")] + [(f"x{i}", f"x{i}") for i in range(5000)]
    scores.update({f"x{i}": 0.1 for i in range(5000)})
    pool = _pool(entries)
    samples = pd.DataFrame([_sample("s1", "p", "positive")])
    row = mine_hard_negatives(samples, pool, ScoreEmbedder(scores), k=4, top_n=1).table.iloc[0]
    assert row.neg_ids[0] == "n1" and list(row.neg_is_random) == [False, True, True, True]
    assert len(set(row.neg_ids)) == 4 and all(i.startswith("x") for i in row.neg_ids[1:])
