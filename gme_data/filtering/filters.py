"""``filtered_samples``: GME's quality filters over the ``fused_queries`` rows, in order.

1. image-text score below the embedder's threshold (GME: CLIP score < 0.2) -> ``image_score_below_threshold``
2. consistency: a text retriever must rank the positive in its top-k (20) among all candidate
   texts -> ``consistency_rank_above_k`` (a candidate reads as the domain classifier read it,
   ``"<title>. <text>"``, so its vector comes from the cache; a positive outside the candidates table
   reads as its ``pos_text``)
3. dedup: exact (query, positive) pairs -> ``duplicate_pair``; near-duplicate queries for the same
   positive (text cosine + image pHash) -> ``near_duplicate``
4. rules: ``answer_leak``, ``entity_leak``, ``query_too_short``, ``query_too_long``

Each sample is judged by the filters in order until one drops it; every drop keeps its reason,
score and the filter's evidence in the lineage. See :class:`~gme_data.filtering.config.FilterConfig`.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from gme_data.filtering.common import default_instructions, object_columns, quantiles
from gme_data.filtering.config import FilterConfig, resolve_threshold
from gme_data.filtering.dedup import find_duplicates, image_key, normalize_text
from gme_data.filtering.text_retriever import TextRetriever, load_text_retriever
from gme_data.lineage import StageOutput
from gme_data.records import stable_id
from gme_data.tables import clean, passage_text, require_columns

log = logging.getLogger(__name__)

STAGE = "filtered_samples"
RECORD_KIND = "sample"
SAMPLE_COLUMNS: tuple[str, ...] = (
    "id", "combination", "instruction", "query_text", "query_image", "pos_id", "pos_text", "pos_image",
    "source_id", "image_score", "consistency_rank", "consistency_score", "fused_id",
)
FUSED_REQUIRED = ("id", "combination", "query_text", "query_image", "pos_text", "pos_image")
#: Drop reasons of each filter.
FILTER_REASONS: dict[str, tuple[str, ...]] = {
    "image_score": ("image_score_below_threshold",),
    "consistency": ("consistency_rank_above_k",),
    "dedup": ("duplicate_pair", "near_duplicate"),
    "rules": ("answer_leak", "entity_leak", "query_too_short", "query_too_long"),
}


@dataclass
class FilterReport:
    """Counts, score distributions and a small gallery for the UI."""

    n_in: int = 0
    n_kept: int = 0
    fraction_kept: float = 0.0
    drops_by_filter: dict[str, int] = field(default_factory=dict)
    drops_by_reason: dict[str, int] = field(default_factory=dict)
    by_combination: dict[str, dict[str, int]] = field(default_factory=dict)
    scores: dict[str, dict[str, float] | None] = field(default_factory=dict)
    thresholds: dict[str, float | None] = field(default_factory=dict)
    consistency_model: str = ""
    consistency_top_k: int = 0
    order: list[str] = field(default_factory=list)
    gallery: list[dict[str, Any]] = field(default_factory=list)
    drop_examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def to_metadata(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class FilterResult:
    table: pd.DataFrame
    lineage: StageOutput
    report: FilterReport


@dataclass
class _Verdict:
    filter: str
    reason: str
    score: float | None
    payload: dict[str, Any]


def _is_fused(combination: str) -> bool:
    return str(combination).startswith("IT->")


def _contains_words(haystack: str, needle: str) -> bool:
    """``needle`` occurs in ``haystack`` as whole words (case-insensitive, whitespace-normalised)."""
    h, n = normalize_text(haystack), normalize_text(needle)
    if not h or not n:
        return False
    return re.search(r"(?<!\w)" + re.escape(n) + r"(?!\w)", h) is not None


class _Run:
    """State of one filtering run over the fused rows."""

    def __init__(self, df: pd.DataFrame, candidates: pd.DataFrame | None, cfg: FilterConfig,
                 retriever: TextRetriever | None):
        self.df = df
        self.rows = df.to_dict("records")
        self.candidates = candidates
        self.cfg = cfg
        self._retriever = retriever
        n = len(df)
        self.verdicts: list[_Verdict | None] = [None] * n
        self.consistency_rank = np.full(n, np.nan)
        self.consistency_score = np.full(n, np.nan)
        self.thresholds: dict[str, float | None] = {}

    @property
    def retriever(self) -> TextRetriever:
        if self._retriever is None:
            self._retriever = load_text_retriever(self.cfg.consistency_model)
        return self._retriever

    def alive(self) -> list[int]:
        return [i for i, v in enumerate(self.verdicts) if v is None]

    def drop(self, i: int, filter_name: str, reason: str, score: float | None, **payload: Any) -> None:
        self.verdicts[i] = _Verdict(filter_name, reason, score, payload)

    # ---- 1. image-text score ---------------------------------------------------------------
    def image_score(self) -> None:
        for i in self.alive():
            r = self.rows[i]
            score = clean(r.get("image_score"))
            if score is None:
                continue
            name = clean(r.get("embedder")) or "default"
            if name not in self.thresholds:
                self.thresholds[name] = resolve_threshold(self.cfg.image_score_thresholds, name)
            thr = self.thresholds[name]
            if thr is not None and float(score) < thr:
                self.drop(i, "image_score", "image_score_below_threshold", float(score), threshold=thr,
                          embedder=name)

    # ---- 2. consistency ----------------------------------------------------------------------
    def _corpus(self) -> tuple[list[Any], list[str]]:
        if self.candidates is not None:
            ids, texts = [], []
            for c in self.candidates.to_dict("records"):
                t = passage_text(c.get("title"), c.get("text"))  # the classifier's string: no new embedding
                if t is not None:
                    ids.append(c["id"])
                    texts.append(t)
            return ids, texts
        seen: dict[Any, str] = {}
        for r in self.rows:
            pid, t = clean(r.get("pos_id")), clean(r.get("pos_text"))
            if t is not None:
                seen.setdefault(pid if pid is not None else t, t)
        return list(seen), list(seen.values())

    def _consistency_query(self, r: dict[str, Any]) -> str | None:
        if _is_fused(r["combination"]) and self.cfg.fused_consistency_query == "original":
            return clean(r.get("original_query")) or clean(r.get("query_text"))
        return clean(r.get("query_text"))

    def consistency(self) -> None:
        combos = self.cfg.consistency_combinations
        todo = [i for i in self.alive() if combos is None or self.rows[i]["combination"] in combos]
        if not todo:
            return
        ids, texts = self._corpus()
        pos_of = {pid: n for n, pid in enumerate(ids)}
        corpus = self.retriever.encode(texts)
        checked, queries, positives = [], [], []
        extra: dict[int, str] = {}
        for i in todo:
            r = self.rows[i]
            q = self._consistency_query(r)
            pid = clean(r.get("pos_id"))
            if q is None or (combos is None and clean(r.get("pos_text")) is None):
                continue  # by default only positives with text are checked (not T->I / IT->I)
            if pid is not None and pid in pos_of:
                positives.append(corpus[pos_of[pid]])
            elif clean(r.get("pos_text")) is not None:
                extra[len(positives)] = clean(r["pos_text"])
                positives.append(None)
            else:
                continue
            checked.append(i)
            queries.append(q)
        if not checked:
            return
        if extra:
            vecs = self.retriever.encode(list(extra.values()))
            for (slot, _), v in zip(extra.items(), vecs, strict=True):
                positives[slot] = v
        ranks, pos_scores = self.retriever.ranks(queries, corpus, np.stack(positives))
        k = self.cfg.consistency_top_k
        for i, rank, s in zip(checked, ranks, pos_scores, strict=True):
            self.consistency_rank[i] = int(rank)
            self.consistency_score[i] = float(s)
            if rank > k:
                self.drop(i, "consistency", "consistency_rank_above_k", float(rank), top_k=k,
                          positive_score=round(float(s), 4), corpus_size=len(ids),
                          consistency_query=self._consistency_query(self.rows[i]))

    # ---- 3. dedup -------------------------------------------------------------------------------
    def dedup(self) -> None:
        idx = self.alive()
        if not idx:
            return
        texts = [clean(self.rows[i].get("query_text")) for i in idx]
        images = [clean(self.rows[i].get("query_image")) for i in idx]
        pos_keys = []
        for i in idx:
            r = self.rows[i]
            pid = clean(r.get("pos_id"))
            # the positive: its id plus which parts it has (IT->T and IT->IT share the paragraph id)
            pos_keys.append((pid if pid is not None else normalize_text(clean(r.get("pos_text"))),
                             clean(r.get("pos_text")) is not None, image_key(clean(r.get("pos_image")))))
        present = [t for t in texts if t is not None]
        vectors = None
        if present:
            enc = self.retriever.encode(present)
            vectors = np.zeros((len(texts), enc.shape[1]), dtype=np.float32)
            vectors[[n for n, t in enumerate(texts) if t is not None]] = enc
        for d in find_duplicates(texts, images, pos_keys, vectors, self.cfg.dedup_text_threshold,
                                 self.cfg.dedup_phash_max_distance):
            i, j = idx[d.index], idx[d.duplicate_of]
            self.drop(i, "dedup", d.reason, round(d.score, 4), duplicate_of=self.rows[j]["id"],
                      text_cos=None if d.text_cos is None else round(d.text_cos, 4), phash_distance=d.phash_distance)

    # ---- 4. rules ---------------------------------------------------------------------------------
    def rules(self) -> None:
        cfg = self.cfg
        for i in self.alive():
            r = self.rows[i]
            q = clean(r.get("query_text"))
            if q is None:
                continue
            answer = clean(r.get("answer"))
            entity = clean(r.get("entity"))
            if answer is not None and len(str(answer)) >= cfg.answer_leak_min_chars and _contains_words(q, answer):
                self.drop(i, "rules", "answer_leak", None, answer=answer)
            elif cfg.drop_entity_leak and _is_fused(r["combination"]) and entity is not None and \
                    _contains_words(q, entity):
                self.drop(i, "rules", "entity_leak", None, entity=entity)
            elif len(q) < cfg.min_query_chars:
                self.drop(i, "rules", "query_too_short", float(len(q)), min_chars=cfg.min_query_chars)
            elif len(q) > cfg.max_query_chars:
                self.drop(i, "rules", "query_too_long", float(len(q)), max_chars=cfg.max_query_chars)


def filter_samples(fused_queries: pd.DataFrame, candidates: pd.DataFrame | None = None,
                   config: FilterConfig | None = None, text_retriever: TextRetriever | None = None) -> FilterResult:
    """Apply GME's filters to the ``fused_queries`` rows; returns the ``filtered_samples`` table
    (:data:`SAMPLE_COLUMNS`), the lineage of every kept and dropped sample, and a :class:`FilterReport`.

    ``candidates`` is the consistency filter's corpus (all candidate texts); without it the distinct
    positives of the input serve as the corpus. ``text_retriever`` overrides ``config.consistency_model``.
    """
    cfg = config or FilterConfig()
    require_columns(fused_queries, FUSED_REQUIRED, "fused_queries")
    if candidates is not None:
        require_columns(candidates, ("id", "title", "text"), "candidates")
    df = fused_queries.reset_index(drop=True)
    run = _Run(df, candidates, cfg, text_retriever)
    for name in cfg.order:
        getattr(run, name)()
    instructions = {**default_instructions(), **cfg.instructions}

    lineage = StageOutput()
    kept_rows: list[dict[str, Any]] = []
    for i, r in enumerate(run.rows):
        fid = str(r["id"])
        sid = stable_id("fs", fid)
        image_score = clean(r.get("image_score"))
        image_score = None if image_score is None else float(image_score)
        rank = None if math.isnan(run.consistency_rank[i]) else int(run.consistency_rank[i])
        cscore = None if math.isnan(run.consistency_score[i]) else round(float(run.consistency_score[i]), 6)
        v = run.verdicts[i]
        common = {"combination": r["combination"], "query_text": clean(r.get("query_text")),
                  "image_score": image_score, "consistency_rank": rank, "consistency_score": cscore}
        if v is not None:
            lineage.drop(sid, RECORD_KIND, v.reason, parents=[fid], stage=STAGE, score=v.score, filter=v.filter,
                         **common, **v.payload)
            continue
        kept_rows.append({
            "id": sid, "combination": r["combination"], "instruction": instructions.get(r["combination"]),
            "query_text": clean(r.get("query_text")), "query_image": clean(r.get("query_image")),
            "pos_id": clean(r.get("pos_id")), "pos_text": clean(r.get("pos_text")),
            "pos_image": clean(r.get("pos_image")), "source_id": clean(r.get("query_id")) or fid,
            "image_score": image_score, "consistency_rank": rank, "consistency_score": cscore, "fused_id": fid,
        })
        lineage.keep(sid, RECORD_KIND, parents=[fid], stage=STAGE, score=image_score, **common)
    table = pd.DataFrame(kept_rows, columns=list(SAMPLE_COLUMNS))
    table["image_score"] = table["image_score"].astype("float64")
    table["consistency_score"] = table["consistency_score"].astype("float64")
    table["consistency_rank"] = table["consistency_rank"].astype("Int64")
    object_columns(table, ("id", "combination", "instruction", "query_text", "query_image", "pos_id", "pos_text",
                           "pos_image", "source_id", "fused_id"))
    report = _report(df, run, table, cfg)
    log.info("filtered_samples: %d -> %d kept (%.1f%%); drops %s", report.n_in, report.n_kept,
             100 * report.fraction_kept, report.drops_by_reason)
    return FilterResult(table, lineage, report)


def _report(df: pd.DataFrame, run: _Run, table: pd.DataFrame, cfg: FilterConfig) -> FilterReport:
    by_filter = Counter(v.filter for v in run.verdicts if v is not None)
    by_reason = Counter(v.reason for v in run.verdicts if v is not None)
    combos_in = Counter(df["combination"]) if len(df) else Counter()
    combos_kept = Counter(table["combination"]) if len(table) else Counter()
    image_scores = pd.to_numeric(df["image_score"], errors="coerce").to_numpy(dtype=np.float64) if len(df) else []
    kept_scores = table["image_score"].to_numpy(dtype=np.float64) if len(table) else []
    gallery_src = table.assign(_has_image=table["query_image"].notna()).sort_values(
        "_has_image", ascending=False, kind="stable") if len(table) else table
    gallery = [
        {"id": g["id"], "combination": g["combination"], "query_text": clean(g["query_text"]),
         "query_image": clean(g["query_image"]), "pos_text": (clean(g["pos_text"]) or "")[:160] or None,
         "pos_image": clean(g["pos_image"]),
         "image_score": None if pd.isna(g["image_score"]) else round(float(g["image_score"]), 4)}
        for g in gallery_src.head(cfg.gallery_size).to_dict("records")
    ]
    examples: dict[str, list[dict[str, Any]]] = {}
    for i, v in enumerate(run.verdicts):
        if v is not None and len(examples.setdefault(v.reason, [])) < 3:
            r = run.rows[i]
            examples[v.reason].append({"fused_id": r["id"], "query_text": clean(r.get("query_text")),
                                       "query_image": clean(r.get("query_image")), "score": v.score})
    n_in, n_kept = len(df), len(table)
    return FilterReport(
        n_in=n_in, n_kept=n_kept, fraction_kept=round(n_kept / n_in, 4) if n_in else 0.0,
        drops_by_filter={name: by_filter.get(name, 0) for name in cfg.order},
        drops_by_reason=dict(by_reason.most_common()),
        by_combination={c: {"in": combos_in[c], "kept": combos_kept.get(c, 0)} for c in sorted(combos_in)},
        scores={"image_score": quantiles(image_scores), "image_score_kept": quantiles(kept_scores),
                "consistency_rank": quantiles(run.consistency_rank), "consistency_score": quantiles(run.consistency_score)},
        thresholds=dict(run.thresholds),
        consistency_model=run._retriever.name if run._retriever is not None else str(cfg.consistency_model or ""),
        consistency_top_k=cfg.consistency_top_k, order=list(cfg.order), gallery=gallery, drop_examples=examples,
    )
