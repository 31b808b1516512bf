"""Validation retrieval scores: Recall@k per modality combination over the split's own candidates."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from gme_data.mining.embedding import encode, encode_with_instructions
from gme_data.records import COMBINATIONS, Item
from gme_data.training.rows import TrainRow, table_rows


def evaluate_retrieval(embedder: Any, data: pd.DataFrame | Sequence[TrainRow], ks: Sequence[int] = (1, 5),
                       batch_size: int = 32, show_progress: bool = False) -> dict[str, Any]:
    """Recall@k of ``embedder`` on ``data`` (a table or :class:`TrainRow` list).

    For each combination the corpus is every distinct candidate (positives and negatives) of that
    combination's rows; a query hits when its positive (by id, else content) is in the top k.
    Returns micro averages (``recall@k``), macro averages over combinations (``macro_recall@k``)
    and ``per_combination``.
    """
    rows = table_rows(data) if isinstance(data, pd.DataFrame) else list(data)
    res: dict[str, Any] = {"n_queries": len(rows), "per_combination": {}}
    if not rows:
        for k in ks:
            res[f"recall@{k}"] = float("nan")
            res[f"macro_recall@{k}"] = float("nan")
        return res
    groups: dict[str, list[TrainRow]] = {}
    for r in rows:
        groups.setdefault(r.combination, []).append(r)
    hits_all = {k: [] for k in ks}
    order = sorted(groups, key=lambda c: COMBINATIONS.index(c) if c in COMBINATIONS else 99)
    for comb in order:
        grp = groups[comb]
        corpus: dict[Hashable, Item] = {}
        for r in grp:
            corpus.setdefault(r.pos_key, r.positive)
            for key, it in zip(r.neg_keys, r.negatives, strict=True):
                corpus.setdefault(key, it)
        keys = list(corpus)
        c_emb = encode(embedder, [corpus[k] for k in keys], "candidate", None, batch_size, show_progress)
        q_emb = encode_with_instructions(embedder, [r.query for r in grp], "query", [r.instruction for r in grp],
                                         batch_size, show_progress)
        scores = q_emb @ c_emb.T
        pos_col = np.asarray([keys.index(r.pos_key) for r in grp])
        pos_score = scores[np.arange(len(grp)), pos_col]
        # rank = 1 + candidates strictly better (ties count against the positive: pessimistic)
        better = (scores > pos_score[:, None]).sum(1)
        ties = (scores == pos_score[:, None]).sum(1) - 1
        rank = 1 + better + ties
        entry: dict[str, Any] = {"n": len(grp), "corpus": len(keys), "mean_rank": float(rank.mean())}
        for k in ks:
            h = (rank <= k).astype(float)
            entry[f"recall@{k}"] = float(h.mean())
            hits_all[k].extend(h.tolist())
        res["per_combination"][comb] = entry
    for k in ks:
        res[f"recall@{k}"] = float(np.mean(hits_all[k]))
        res[f"macro_recall@{k}"] = float(np.mean([e[f"recall@{k}"] for e in res["per_combination"].values()]))
    return res
