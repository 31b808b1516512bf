"""Our metrics against pytrec_eval on realistic TREC-style runs (graded qrels, ties, odd queries)."""

from __future__ import annotations

import functools
import random

import pytest

from gme_data.errors import InvalidInputError
from gme_data.evaluation import metrics as M

pytrec_eval = pytest.importorskip("pytrec_eval")

CUTOFFS = (1, 3, 5, 10, 20, 100)


def make_collection(seed: int, n_queries: int = 250, n_docs: int = 3000):
    """Graded qrels (0-3, a few -1), runs of varying depth with many exact score ties."""
    rng = random.Random(seed)
    docs = [f"D{rng.randrange(10**rng.randint(1, 6))}-{i}" for i in range(n_docs)]
    qrels: dict[str, dict[str, int]] = {}
    run: dict[str, dict[str, float]] = {}
    for q in range(n_queries):
        qid = f"q{q}"
        judged = rng.sample(docs, rng.randint(1, 40))
        rel = {}
        for d in judged:
            u = rng.random()
            rel[d] = 3 if u < 0.05 else 2 if u < 0.15 else 1 if u < 0.35 else -1 if u < 0.38 else 0
        if q % 17 == 0:  # judged but nothing relevant
            rel = {d: 0 for d in judged}
        if q % 23 != 0:  # some judged queries never retrieved
            qrels[qid] = rel
        if q % 29 == 5:  # some queries only in qrels
            continue
        depth = rng.choice([5, 10, 50, 100, 150])
        pool = list(dict.fromkeys(judged[: rng.randint(0, len(judged))] + rng.sample(docs, depth)))[:depth]
        coarse = rng.choice([1, 2, 3])  # few distinct scores -> many ties
        run[qid] = {d: round(rng.gauss(0, 1), coarse) for d in pool}
    run["q_unjudged"] = {docs[0]: 1.0, docs[1]: 1.0}
    return qrels, run


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_pytrec_eval(seed: int) -> None:
    qrels, run = make_collection(seed)
    ours = [f"{fam}@{k}" for fam in ("ndcg", "recall", "precision", "map", "hit") for k in CUTOFFS]
    wanted = {M.pytrec_measure(m)[0] for m in ours}
    ref = pytrec_eval.RelevanceEvaluator(qrels, wanted).evaluate(run)
    got = M.evaluate(qrels, run, ours)
    assert set(got) == set(ref)
    assert len(got) > 200
    for qid, ref_q in ref.items():
        for m in ours:
            assert got[qid][m] == pytest.approx(ref_q[M.pytrec_measure(m)[1]], abs=1e-6), (qid, m)
    # means as trec_eval's "all" line
    for m in ours:
        key = M.pytrec_measure(m)[1]
        ref_mean = sum(q[key] for q in ref.values()) / len(ref)
        assert M.evaluate_mean(qrels, run, [m])[m] == pytest.approx(ref_mean, abs=1e-9)


@pytest.mark.parametrize("k", [1, 5, 10])
def test_mrr_matches_recip_rank_on_cut_run(k: int) -> None:
    qrels, run = make_collection(7)
    # cut each query's run at k in trec order, computed independently of gme_data
    def trec_cmp(a, b):  # trec_eval's comp_sim_docno: sim descending, then strcmp(b, a)
        if a[1] != b[1]:
            return -1 if a[1] > b[1] else 1
        x, y = b[0].encode(), a[0].encode()
        return (x > y) - (x < y)

    cut = {q: dict(sorted(s.items(), key=functools.cmp_to_key(trec_cmp))[:k]) for q, s in run.items()}
    ref = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(cut)
    got = M.evaluate(qrels, run, [f"mrr@{k}"])
    for qid in ref:
        assert got[qid][f"mrr@{k}"] == pytest.approx(ref[qid]["recip_rank"], abs=1e-6)


def test_tie_break_is_docid_descending() -> None:
    assert M.rank({"a": 0.5, "c": 0.5, "b": 0.5, "z": 0.1, "y": 0.9}) == ["y", "c", "b", "a", "z"]
    # ndcg@1 sees "c" first: relevant
    assert M.evaluate({"q": {"c": 1}}, {"q": {"a": 0.5, "b": 0.5, "c": 0.5}}, ["ndcg@1"])["q"]["ndcg@1"] == 1.0


def test_hit_vs_recall_on_multi_positive_query() -> None:
    qrels = {"q": {"a": 1, "b": 1, "c": 1, "d": 1}}
    run = {"q": {"a": 0.9, "x": 0.8, "y": 0.7}}
    s = M.evaluate(qrels, run, ["hit@5", "recall@5"])["q"]
    assert s == {"hit@5": 1.0, "recall@5": 0.25}


def test_parse_metric_and_errors() -> None:
    assert M.parse_metric("NDCG@10") == ("ndcg", 10)
    assert M.canonical("P@5") == "precision@5"
    assert M.canonical("success@3") == "hit@3"
    for bad in ("ndcg", "foo@3", "ndcg@x", "ndcg@0"):
        with pytest.raises(InvalidInputError):
            M.parse_metric(bad)
