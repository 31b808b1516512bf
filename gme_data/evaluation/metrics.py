"""Retrieval metrics that follow trec_eval / pytrec_eval conventions exactly.

Conventions (checked against pytrec_eval to 1e-6 in ``tests/evaluation/test_metrics.py``):

- Ranking: a run's documents are ordered by score, descending; ties are broken by document id,
  descending (trec_eval compares docnos with ``strcmp`` and puts the larger one first). Any rank
  given with the run is ignored. Unjudged documents count as non-relevant.
- Relevance: a judgement ``rel > 0`` is relevant for the binary measures (trec_eval's
  ``relevance_level`` 1 on integer qrels). NDCG uses the judgement itself as the gain (linear gain,
  negative judgements count 0) with the discount ``log2(rank + 1)``; the ideal ranking sorts all of
  the query's judgements.
- Queries: a query is scored when it appears both in the qrels and in the run (pytrec_eval's
  behaviour). A judged query without a single relevant document scores 0 on every measure and
  still counts in the mean.

Measures (``name@k``; pytrec_eval equivalent in brackets):

- ``ndcg@k`` (``ndcg_cut.k``), ``recall@k`` (``recall.k``: fraction of relevant docs in the top k),
  ``precision@k`` / ``p@k`` (``P.k``: always divided by k), ``map@k`` (``map_cut.k``),
  ``mrr@k`` (``recip_rank`` on the run cut at k),
  ``hit@k`` (``success.k``): 1 if any relevant doc is in the top k. This is what UniIR / M-BEIR
  call ``Recall@k`` and what UMRB reports for its Recall@k tasks.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from gme_data.errors import InvalidInputError

Qrels = Mapping[str, Mapping[str, int]]
Run = Mapping[str, Mapping[str, float]]

FAMILIES: tuple[str, ...] = ("ndcg", "recall", "hit", "mrr", "map", "precision")
_ALIASES = {"p": "precision", "prec": "precision", "success": "hit", "hits": "hit", "r": "recall",
            "recip_rank": "mrr", "ndcg_cut": "ndcg", "map_cut": "map", "hitrate": "hit"}
#: Measures computed by default (headline metrics of UMRB plus the common companions).
DEFAULT_METRICS: tuple[str, ...] = (
    "ndcg@5", "ndcg@10", "recall@1", "recall@5", "recall@10", "recall@100", "hit@1", "hit@5", "hit@10",
    "mrr@10", "map@10", "precision@1", "precision@5",
)


def parse_metric(name: str) -> tuple[str, int]:
    """``"NDCG@10"`` -> ``("ndcg", 10)``; aliases ``p``, ``success``, ``recip_rank``... are accepted."""
    if not isinstance(name, str) or "@" not in name:
        raise InvalidInputError(f"metric {name!r}: expected NAME@K, e.g. ndcg@10 or recall@5")
    fam, _, k = name.strip().lower().partition("@")
    fam = _ALIASES.get(fam, fam)
    if fam not in FAMILIES:
        raise InvalidInputError(f"metric {name!r}: unknown measure {fam!r}; expected one of {', '.join(FAMILIES)}")
    try:
        cutoff = int(k)
    except ValueError:
        raise InvalidInputError(f"metric {name!r}: cutoff {k!r} is not an integer") from None
    if cutoff < 1:
        raise InvalidInputError(f"metric {name!r}: cutoff must be >= 1")
    return fam, cutoff


def canonical(name: str) -> str:
    """Canonical spelling of a metric name (``"P@5"`` -> ``"precision@5"``)."""
    fam, k = parse_metric(name)
    return f"{fam}@{k}"


def rank(scores: Mapping[str, float]) -> list[str]:
    """Document ids in trec_eval order: score descending, then docid descending."""
    return [d for d, _ in sorted(scores.items(), key=lambda x: (x[1], x[0]), reverse=True)]


def query_scores(judged: Mapping[str, int], ranking: Sequence[str], metrics: Iterable[str]) -> dict[str, float]:
    """All ``metrics`` for one query given its judgements and its ranked document ids."""
    parsed = [(m, *parse_metric(m)) for m in metrics]
    if not parsed:
        return {}
    max_k = max(k for _, _, k in parsed)
    rels = [judged.get(d, 0) for d in ranking[:max_k]]
    num_rel = sum(1 for r in judged.values() if r > 0)
    # prefix sums of relevant hits, DCG, AP numerators and first-hit rank over the ranking
    ideal = sorted((r for r in judged.values() if r > 0), reverse=True)
    out: dict[str, float] = {}
    first_hit = next((i + 1 for i, r in enumerate(rels) if r > 0), None)
    for name, fam, k in parsed:
        top = rels[:k]
        if fam == "ndcg":
            dcg = sum(r / math.log2(i + 2) for i, r in enumerate(top) if r > 0)
            idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal[:k]))
            out[name] = dcg / idcg if idcg > 0 else 0.0
        elif fam == "recall":
            out[name] = sum(1 for r in top if r > 0) / num_rel if num_rel else 0.0
        elif fam == "hit":
            out[name] = 1.0 if num_rel and any(r > 0 for r in top) else 0.0
        elif fam == "precision":
            out[name] = sum(1 for r in top if r > 0) / k
        elif fam == "mrr":
            out[name] = 1.0 / first_hit if first_hit is not None and first_hit <= k else 0.0
        elif fam == "map":
            if not num_rel:
                out[name] = 0.0
                continue
            hits, total = 0, 0.0
            for i, r in enumerate(top):
                if r > 0:
                    hits += 1
                    total += hits / (i + 1)
            out[name] = total / num_rel
    return out


def evaluate(qrels: Qrels, run: Run, metrics: Iterable[str] = DEFAULT_METRICS) -> dict[str, dict[str, float]]:
    """Per-query scores for every query in both ``qrels`` and ``run`` (pytrec_eval's rule)."""
    metrics = list(metrics)
    for m in metrics:
        parse_metric(m)
    out: dict[str, dict[str, float]] = {}
    for qid, scores in run.items():
        judged = qrels.get(qid)
        if judged is None:
            continue
        out[qid] = query_scores(judged, rank(scores), metrics)
    return out


def mean_scores(per_query: Mapping[str, Mapping[str, float]], metrics: Iterable[str] | None = None) -> dict[str, float]:
    """Plain mean over queries of each metric (0.0 for an empty evaluation)."""
    if metrics is None:
        metrics = next(iter(per_query.values()), {}).keys()
    metrics = list(metrics)
    n = len(per_query)
    return {m: (math.fsum(q[m] for q in per_query.values()) / n if n else 0.0) for m in metrics}


def evaluate_mean(qrels: Qrels, run: Run, metrics: Iterable[str] = DEFAULT_METRICS) -> dict[str, float]:
    """Mean of :func:`evaluate` over the scored queries."""
    metrics = list(metrics)
    return mean_scores(evaluate(qrels, run, metrics), metrics)


def pytrec_measure(name: str) -> tuple[str, str]:
    """The pytrec_eval measure (to request, as returned) that matches one of ours (not ``mrr``)."""
    fam, k = parse_metric(name)
    table = {"ndcg": "ndcg_cut", "recall": "recall", "precision": "P", "map": "map_cut", "hit": "success"}
    if fam not in table:
        raise InvalidInputError(f"{name}: no direct pytrec_eval measure (use recip_rank on a run cut at k)")
    return f"{table[fam]}.{k}", f"{table[fam]}_{k}"
