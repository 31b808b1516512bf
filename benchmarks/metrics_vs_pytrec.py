"""gme_data.evaluation.metrics vs pytrec_eval: agreement and speed on synthetic TREC-style runs.

    python benchmarks/metrics_vs_pytrec.py [--queries 2000] [--depth 100] [--seed 0]

Prints the largest absolute difference per measure (should be < 1e-6) and both timings.
"""

from __future__ import annotations

import argparse
import random
import time

import pytrec_eval

from gme_data.evaluation import metrics as M


def collection(n_queries: int, depth: int, seed: int) -> tuple[dict, dict]:
    rng = random.Random(seed)
    docs = [f"d{i}" for i in range(max(10 * depth, 5000))]
    qrels, run = {}, {}
    for q in range(n_queries):
        judged = rng.sample(docs, rng.randint(1, 50))
        qrels[f"q{q}"] = {d: rng.choice([0, 0, 1, 1, 2, 3]) for d in judged}
        pool = list(dict.fromkeys(judged[: rng.randint(0, len(judged))] + rng.sample(docs, depth)))[:depth]
        run[f"q{q}"] = {d: round(rng.random(), rng.choice([1, 2, 4])) for d in pool}
    return qrels, run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--depth", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    qrels, run = collection(args.queries, args.depth, args.seed)
    ours = [f"{f}@{k}" for f in ("ndcg", "recall", "precision", "map", "hit") for k in (1, 5, 10, 100)]
    t0 = time.perf_counter()
    ref = pytrec_eval.RelevanceEvaluator(qrels, {M.pytrec_measure(m)[0] for m in ours}).evaluate(run)
    t_ref = time.perf_counter() - t0
    t0 = time.perf_counter()
    got = M.evaluate(qrels, run, ours)
    t_ours = time.perf_counter() - t0
    worst = {m: max(abs(got[q][m] - ref[q][M.pytrec_measure(m)[1]]) for q in ref) for m in ours}
    for m, d in worst.items():
        print(f"{m:14} max |diff| = {d:.2e}")
    print(f"{len(ref)} queries x depth {args.depth}: pytrec_eval {t_ref:.2f}s, gme_data {t_ours:.2f}s")
    if max(worst.values()) > 1e-6:
        raise SystemExit("MISMATCH above 1e-6")


if __name__ == "__main__":
    main()
