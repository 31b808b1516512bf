"""Hard-negative mining over a candidate pool with any embedder.

For every sample (a row of ``filtered_samples``) the query is embedded (role ``query``, the row's
instruction) and searched against the candidate pool (role ``candidate``). From the top-N
neighbours we remove

* the positive itself: same id, or the same content (text and image bytes) under another id;
* likely false negatives, GME style: candidates scoring ``>= positive_score - margin`` (and,
  when ``max_score`` is set, any candidate scoring ``>= max_score``),

and keep the K best of what remains. When fewer than K remain (tiny pools, strict guards) the
list is filled with random candidates of the positive's modality that also pass the guard; those
are flagged in ``neg_is_random``. A sample with fewer than ``min_negatives`` usable negatives is dropped
(``no_negatives`` / ``too_few_negatives``).

Two-stage mining (GME): call :func:`mine_hard_negatives` first with the base embedder (or any
model), train, then call it again with the trained model on the same samples; the ``neg_*``
columns are replaced.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field
from tqdm.auto import tqdm

from gme_data.errors import InvalidInputError
from gme_data.lineage import DROPPED, Edge, StageOutput
from gme_data.mining.embedding import (
    encode,
    encode_with_instructions,
    row_item,
    same_content,
    topk,
)
from gme_data.records import Item
from gme_data.stage_config import StageConfig, with_changes
from gme_data.tables import corpus_text, require_columns, value_or_none

SAMPLE_COLUMNS = ("id", "combination", "instruction", "query_text", "query_image", "pos_id", "pos_text",
                  "pos_image", "source_id")
NEG_COLUMNS = ("neg_ids", "neg_texts", "neg_images", "neg_scores", "neg_is_random")
#: Columns this stage adds besides the ``neg_*`` lists.
EXTRA_COLUMNS = ("positive_score", "positive_rank", "mined_with")
MAX_FN_EDGES = 16


class MiningConfig(StageConfig):
    """How negatives are mined (``show_progress``: a progress bar; ``stage``: the lineage stage name)."""

    k: int = Field(default=8, description="Hard negatives kept per sample (GME: 8)")
    top_n: int = Field(default=100, description="Neighbours retrieved per query before the guards")
    margin: float = Field(default=0.05, description="False-negative guard: drop candidates scoring >= "
                                                    "positive score - margin")
    max_score: float | None = Field(default=None, description="Absolute false-negative cap: candidates at or "
                                                               "above it are false negatives too (None = off)")
    match_modality: bool = Field(default=True, description="Negatives share the positive's modality")
    fill_random: bool = Field(default=True, description="Top up with random (guard-passing) negatives when "
                                                        "fewer than k remain")
    min_negatives: int | None = Field(default=None, description="Fewer negatives drops the sample (None = k; "
                                      "1 keeps short lists; 0 keeps every sample, mined negatives or not)")
    seed: int = Field(default=0, description="Random fill is deterministic per (seed, sample id)")
    batch_size: int = Field(default=32, description="Items per embedding batch")
    exact_max_pool: int = Field(default=50_000, description="Pools up to this size are searched exactly")
    show_progress: bool = False
    stage: str = "hard_negatives"

    def model_post_init(self, _context: Any) -> None:
        if self.k < 1:
            raise InvalidInputError(f"mining config: k must be >= 1, got {self.k}")
        if self.top_n < 1:
            raise InvalidInputError(f"mining config: top_n must be >= 1, got {self.top_n}")
        if self.min_negatives is not None and not 0 <= self.min_negatives <= self.k:
            raise InvalidInputError(f"mining config: min_negatives must be in [0, k={self.k}], "
                                    f"got {self.min_negatives}")
        if not np.isfinite(self.margin):
            raise InvalidInputError(f"mining config: margin must be finite, got {self.margin}")

    @property
    def required(self) -> int:
        return self.k if self.min_negatives is None else self.min_negatives


@dataclass
class MiningResult:
    """The ``hard_negatives`` table, its lineage and mining statistics."""

    table: pd.DataFrame
    lineage: StageOutput
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Pool:
    ids: list[str]
    texts: list[str | None]
    images: list[str | None]
    modalities: list[str]
    emb: np.ndarray  # [n, dim]
    groups: dict[str, np.ndarray]  # modality -> pool indices


def pool_from_samples(samples: pd.DataFrame) -> pd.DataFrame:
    """A candidate pool (``id, text, image``) made of the samples' positives, one row per ``pos_id``."""
    require_columns(samples, ("pos_id", "pos_text", "pos_image"), "samples")
    pool = samples[["pos_id", "pos_text", "pos_image"]].rename(
        columns={"pos_id": "id", "pos_text": "text", "pos_image": "image"})
    return pool.drop_duplicates("id").reset_index(drop=True)


def _embed_pool(pool: pd.DataFrame, embedder: Any, cfg: MiningConfig) -> _Pool:
    require_columns(pool, ("id",), "candidate pool")
    if "text" not in pool.columns and "image" not in pool.columns:
        raise InvalidInputError("candidate pool needs a 'text' and/or an 'image' column")
    rows = pool.drop_duplicates("id").to_dict("records")
    items: list[Item] = []
    for i, row in enumerate(rows):
        if value_or_none(row.get("id")) is None:
            raise InvalidInputError(f"candidate pool row {i}: empty id")
        r = {"text": corpus_text(row.get("title"), row.get("text")), "image": value_or_none(row.get("image"))}
        items.append(row_item(r, "text", "image", row["id"], where=f"candidate pool row {i} (id {row['id']})"))
    emb = encode(embedder, items, "candidate", None, cfg.batch_size, cfg.show_progress)
    mods = [it.modality if cfg.match_modality else "all" for it in items]
    groups: dict[str, list[int]] = {}
    for i, m in enumerate(mods):
        groups.setdefault(m, []).append(i)
    return _Pool(ids=[str(it.id) for it in items], texts=[it.text for it in items],
                 images=[str(it.image) if it.image is not None else None for it in items],
                 modalities=[it.modality for it in items], emb=emb,
                 groups={m: np.asarray(ix, dtype=np.int64) for m, ix in groups.items()})


def _sample_rng(seed: int, sample_id: str) -> np.random.Generator:
    h = hashlib.sha1(f"{seed}\x1f{sample_id}".encode()).digest()
    return np.random.default_rng(int.from_bytes(h[:8], "little"))


def mine_hard_negatives(samples: pd.DataFrame, pool: pd.DataFrame | None, embedder: Any,
                        config: MiningConfig | None = None, **overrides: Any) -> MiningResult:
    """Mine K hard negatives per sample from ``pool`` (``id, text, image`` [, ``title``]).

    ``pool=None`` uses the samples' own positives as the pool. ``embedder`` is anything with the
    gme_data embedder protocol (``encode(items, role=..., instruction=...)``). Keyword overrides
    update ``config`` (e.g. ``k=4, margin=0.1``).
    """
    cfg = config or MiningConfig()
    if overrides:
        cfg = with_changes(cfg, **overrides)
    require_columns(samples, ("id", "query_text", "query_image", "pos_id", "pos_text", "pos_image"), "samples")
    if pool is None:
        pool = pool_from_samples(samples)
    model_name = str(getattr(embedder, "name", type(embedder).__name__))
    base = samples.drop(columns=[c for c in NEG_COLUMNS + EXTRA_COLUMNS if c in samples.columns])
    base = base.reset_index(drop=True)
    rows = base.to_dict("records")
    lineage = StageOutput()

    if not rows:
        table = base.copy()
        for c in NEG_COLUMNS + EXTRA_COLUMNS:
            table[c] = pd.Series(dtype=object)
        return MiningResult(table, lineage, {"n_samples": 0, "n_kept": 0, "n_dropped": 0, "model": model_name})

    pl = _embed_pool(pool, embedder, cfg)

    # queries (per-row instruction) and positives (candidate role)
    q_items, p_items, instructions = [], [], []
    for i, row in enumerate(rows):
        where = f"samples row {i} (id {row.get('id')})"
        q_items.append(row_item(row, "query_text", "query_image", row.get("id"), where=where))
        p_items.append(row_item(row, "pos_text", "pos_image", row.get("pos_id"), where=where))
        instructions.append(value_or_none(row.get("instruction")) if "instruction" in row else None)
    q_emb = encode_with_instructions(embedder, q_items, "query", instructions, cfg.batch_size, cfg.show_progress)
    uniq: dict[tuple, int] = {}
    p_index = []
    for it in p_items:
        key = (it.text, str(it.image) if it.image is not None else None)
        p_index.append(uniq.setdefault(key, len(uniq)))
    uniq_items = [None] * len(uniq)
    for it, j in zip(p_items, p_index, strict=True):
        uniq_items[j] = it
    p_emb_u = encode(embedder, uniq_items, "candidate", None, cfg.batch_size, cfg.show_progress)
    pos_scores = np.einsum("nd,nd->n", q_emb, p_emb_u[np.asarray(p_index)])

    # retrieval per modality group
    by_group: dict[str, list[int]] = {}
    for i, it in enumerate(p_items):
        by_group.setdefault(it.modality if cfg.match_modality else "all", []).append(i)
    hits: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for g, qidx in by_group.items():
        gidx = pl.groups.get(g, np.zeros(0, np.int64))
        # retrieve a few extra to make room for removed positives
        sc, ix = topk(q_emb[qidx], pl.emb[gidx], cfg.top_n + 1, cfg.exact_max_pool)
        for j, qi in enumerate(qidx):
            hits[qi] = (sc[j], gidx[ix[j]])

    out_cols: dict[str, list] = {c: [] for c in NEG_COLUMNS + EXTRA_COLUMNS}
    keep_mask: list[bool] = []
    ranks, censored, fn_removed, considered, pos_removed, neg_scores_all, n_random = [], 0, 0, 0, 0, [], 0
    iterator = tqdm(range(len(rows)), desc="mining", disable=not cfg.show_progress)
    for i in iterator:
        row, pit = rows[i], p_items[i]
        sid, pos_id = str(row["id"]), value_or_none(row.get("pos_id"))
        s_pos = float(pos_scores[i])
        threshold = s_pos - cfg.margin
        if cfg.max_score is not None:
            threshold = min(threshold, cfg.max_score)
        p_text, p_image = pit.text, (str(pit.image) if pit.image is not None else None)

        def is_positive(j: int, pos_id=pos_id, p_text=p_text, p_image=p_image) -> bool:
            return (pos_id is not None and pl.ids[j] == str(pos_id)) or same_content(
                pl.texts[j], pl.images[j], p_text, p_image)

        sc, ix = hits[i]
        chosen: list[int] = []
        chosen_scores: list[float] = []
        fn_ids: list[tuple[str, float]] = []
        n_pos_here, n_cons, above = 0, 0, 0
        seen: set[int] = set()
        for s, j in zip(sc.tolist(), ix.tolist(), strict=True):
            if n_cons >= cfg.top_n:
                break
            if not np.isfinite(s) or j in seen:  # padding from an approximate index
                continue
            seen.add(j)
            if is_positive(j):
                n_pos_here += 1
                continue
            n_cons += 1
            if s > s_pos:
                above += 1
            if s >= threshold:
                fn_ids.append((pl.ids[j], s))
                continue
            if len(chosen) < cfg.k:
                chosen.append(j)
                chosen_scores.append(s)
        group_size = len(pl.groups.get(pit.modality if cfg.match_modality else "all", []))
        if n_cons > 0 and above == n_cons and n_cons + n_pos_here < group_size:
            censored += 1
        ranks.append(above + 1)
        fn_removed += len(fn_ids)
        considered += n_cons
        pos_removed += n_pos_here
        is_random = [False] * len(chosen)

        if len(chosen) < cfg.k and cfg.fill_random:
            g = pit.modality if cfg.match_modality else "all"
            gidx = pl.groups.get(g, np.zeros(0, np.int64))
            taken = set(chosen) | {j for j in ix.tolist()}
            rng = _sample_rng(cfg.seed, sid)
            if len(gidx) <= 4096:
                draws = rng.permutation(gidx).tolist()
            else:  # large pools: a bounded number of random draws instead of a full permutation
                draws = list(dict.fromkeys(gidx[rng.integers(0, len(gidx), size=64 * cfg.k)].tolist()))
            for j in draws:
                if len(chosen) >= cfg.k:
                    break
                if j in taken or is_positive(j):
                    continue
                s = float(q_emb[i] @ pl.emb[j])
                if s >= threshold:
                    continue
                chosen.append(j)
                chosen_scores.append(s)
                is_random.append(True)

        fn_edges = [Edge(sid, cid, cfg.stage, DROPPED, "likely_false_negative", s) for cid, s in fn_ids[:MAX_FN_EDGES]]
        payload = dict(n_negatives=len(chosen), n_random=int(sum(is_random)), positive_rank=above + 1,
                       positive_score=round(s_pos, 6), n_false_negatives=len(fn_ids),
                       positives_in_pool=n_pos_here, model=model_name)
        if len(chosen) < cfg.required:
            reason = "no_negatives" if not chosen else "too_few_negatives"
            lineage.drop(sid, "sample", reason, parents=[], stage=cfg.stage, score=s_pos, **payload)
            lineage.edges.extend(fn_edges)
            keep_mask.append(False)
            continue
        n_random += int(sum(is_random))
        neg_scores_all.extend(chosen_scores)
        reason = f"kept_{len(chosen)}_negatives" + ("_with_random" if any(is_random) else "")
        lineage.keep(sid, "sample", parents=[pl.ids[j] for j in chosen], stage=cfg.stage, reason=reason,
                     score=s_pos, **payload)
        lineage.edges.extend(fn_edges)
        keep_mask.append(True)
        out_cols["neg_ids"].append([pl.ids[j] for j in chosen])
        out_cols["neg_texts"].append([pl.texts[j] for j in chosen])
        out_cols["neg_images"].append([pl.images[j] for j in chosen])
        out_cols["neg_scores"].append([float(s) for s in chosen_scores])
        out_cols["neg_is_random"].append(is_random)
        out_cols["positive_score"].append(s_pos)
        out_cols["positive_rank"].append(above + 1)
        out_cols["mined_with"].append(model_name)

    table = base[np.asarray(keep_mask, dtype=bool)].reset_index(drop=True)
    for c in NEG_COLUMNS + EXTRA_COLUMNS:
        table[c] = pd.Series(out_cols[c], dtype=object if c in NEG_COLUMNS or c == "mined_with" else None)
    n_kept = int(sum(keep_mask))
    stats = {
        "model": model_name,
        "n_samples": len(rows),
        "n_kept": n_kept,
        "n_dropped": len(rows) - n_kept,
        "drop_reasons": lineage.drop_counts(),
        "pool_size": len(pl.ids),
        "pool_modalities": {m: int(len(v)) for m, v in pl.groups.items()},
        "k": cfg.k,
        "margin": cfg.margin,
        "max_score": cfg.max_score,
        "top_n": cfg.top_n,
        "mean_positive_rank": float(np.mean(ranks)),
        "median_positive_rank": float(np.median(ranks)),
        "positive_at_1": float(np.mean(np.asarray(ranks) == 1)),
        "positive_rank_censored_fraction": censored / len(rows),
        "mean_positive_score": float(np.mean(pos_scores)),
        "false_negative_fraction": fn_removed / considered if considered else 0.0,
        "false_negatives_removed": fn_removed,
        "positives_removed": pos_removed,
        "mean_neg_score": float(np.mean(neg_scores_all)) if neg_scores_all else float("nan"),
        "random_negative_fraction": n_random / max(1, n_kept * cfg.k),
    }
    return MiningResult(table, lineage, stats)
