"""``fused_queries``: attach the entity's image to each rewritten query (GME fused-modal synthesis, step 4).

For each generated query of a fused style (``"What does this plant need to grow?"``, entity
``"tomato"``) the entity text is searched in the image pool (text -> image, top-k); a rule picks one
image, which becomes the query image. The positive is the paragraph: IT->T (paragraph text) and,
when the paragraph has its own image distinct from the query image, IT->IT (text + that image).
Non-fused styles pass through as their own combinations (t2t -> T->T: query -> paragraph text;
t2i -> T->I: caption query -> paragraph image) so ``filtered_samples`` sees every combination.

Every row carries its image-text score (the pool search score of the chosen image for fused rows,
the query-image score for T->I, NaN for T->T), the retrieved ids and scores, and the embedder
name (thresholds are per embedder). Lineage: each fused row's parents are the generated query,
the candidate and (fused rows) the pool image.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from gme_data.errors import InvalidInputError
from gme_data.filtering.common import as_list, object_columns, quantiles
from gme_data.filtering.config import FusedConfig, resolve_threshold
from gme_data.lineage import StageOutput
from gme_data.pool import ImagePool
from gme_data.records import stable_id
from gme_data.tables import clean, corpus_text, require_columns

log = logging.getLogger(__name__)

STAGE = "fused_queries"
RECORD_KIND = "fused_query"

#: Columns of the fused_queries table (the contract's columns first, then provenance).
FUSED_COLUMNS: tuple[str, ...] = (
    "id", "query_id", "candidate_id", "query_text", "query_image", "pos_text", "pos_image", "image_score",
    "retrieved_ids", "retrieved_scores",
    "combination", "style", "query_image_id", "pos_id", "answer", "entity", "original_query",
    "retrieval_text", "image_rule", "source_image_rank", "embedder", "image_origin",
)
GENERATED_REQUIRED = ("id", "candidate_id", "style", "query")
CANDIDATES_REQUIRED = ("id", "title", "text", "image")
_STYLE_COMBINATION = {"t2t": "T->T", "t2i": "T->I"}
_MODALITY = {"text": "T", "image": "I", "fused": "IT", "T": "T", "I": "I", "IT": "IT"}


@dataclass
class FusedReport:
    """What ``fused_queries`` did: counts per combination, drops per reason, score quantiles."""

    n_queries: int = 0
    n_rows: int = 0
    by_combination: dict[str, int] = field(default_factory=dict)
    drops: dict[str, int] = field(default_factory=dict)
    image_score: dict[str, float] | None = None
    top1_score: dict[str, float] | None = None
    source_image_hit_rate: float | None = None
    rule: str = ""
    top_k: int = 0
    embedder: str = ""
    pool_size: int = 0
    #: fused queries whose image was retrieved from the pool / generated / could not be generated
    entity_images: dict[str, int] = field(default_factory=dict)
    #: the image generator's ledger (requests, retries, generated, cache hits, failures, cost); None when off
    image_generation: dict[str, Any] | None = None

    def to_metadata(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


@dataclass
class FusedResult:
    table: pd.DataFrame
    lineage: StageOutput
    report: FusedReport


def _combination(style: str, row: dict[str, Any], cfg: FusedConfig) -> str | None:
    """``"fused"`` for fused rows, else the pass-through combination (None if unsupported)."""
    qm = clean(row.get("query_modality"))
    if style in cfg.fused_styles or qm == "fused":
        return "fused"
    if style in _STYLE_COMBINATION:
        return _STYLE_COMBINATION[style]
    cm = clean(row.get("candidate_modality"))
    if qm in _MODALITY and cm in _MODALITY and _MODALITY[qm] == "T" and _MODALITY[cm] in ("T", "I"):
        return f"T->{_MODALITY[cm]}"
    return None


def _first_sentence(text: Any) -> str | None:
    text = clean(text)
    if text is None:
        return None
    text = " ".join(str(text).split())
    end = text.find(". ")
    return text[: end + 1] if end > 0 else text


def build_fused_queries(generated_queries: pd.DataFrame, candidates: pd.DataFrame, pool: ImagePool,
                        config: FusedConfig | None = None, generator: Any = None) -> FusedResult:
    """Build the ``fused_queries`` table from ``generated_queries`` + ``candidates`` and an image pool.

    ``generator``: an enabled :class:`~gme_data.generation.entity_images.EntityImageGenerator` makes an
    image of the entity (prompt: the entity and the first sentence of its paragraph) when the pool is
    empty or its best image scores below the generator's ``threshold`` (None = the embedder's image-score
    threshold). The generated image is scored like a retrieved one, its row gets ``image_origin``
    ``"generated"`` and ``image_rule`` ``"generated"``, and lineage gets a ``generated_image`` record
    (prompt, model, size, seed). When generation fails the retrieved top-k is used as without a generator
    (an empty pool drops the query as ``image_generation_failed``).

    Returns the table (columns :data:`FUSED_COLUMNS`), a :class:`StageOutput` (kept rows and drops:
    ``unknown_candidate``, ``missing_rewritten_query``, ``missing_entity``, ``empty_pool``,
    ``no_image_above_threshold``, ``candidate_has_no_image``, ``candidate_has_no_text``,
    ``missing_query``, ``unsupported_style``) and a :class:`FusedReport`.
    """
    cfg = config or FusedConfig()
    require_columns(generated_queries, GENERATED_REQUIRED, "generated_queries")
    require_columns(candidates, CANDIDATES_REQUIRED, "candidates")
    if candidates["id"].duplicated().any():
        dup = candidates.loc[candidates["id"].duplicated(), "id"].iloc[0]
        raise InvalidInputError(f"candidates: duplicate id {dup!r}")
    cands = {r["id"]: r for r in candidates.to_dict("records")}
    embedder_name = pool.fingerprint["name"]
    threshold = resolve_threshold(cfg.image_score_thresholds, embedder_name)
    lineage = StageOutput()
    rows: list[dict[str, Any]] = []
    drops: Counter[str] = Counter()
    fused_todo: list[tuple[dict[str, Any], dict[str, Any], str]] = []
    t2i_rows: list[dict[str, Any]] = []
    use_generator = generator is not None and generator.config.enabled
    gen_threshold = None
    if use_generator:
        gen_threshold = generator.config.threshold if generator.config.threshold is not None else threshold
    origins: Counter[str] = Counter()
    generated: dict[tuple[str, str | None], Any] = {}
    generated_scores: dict[tuple[str, str], float] = {}

    def drop(qid: str, cid: Any, reason: str, score: float | None = None, **payload: Any) -> None:
        drops[reason] += 1
        parents = [qid] + ([str(cid)] if clean(cid) is not None and cid in cands else [])
        lineage.drop(stable_id("fq", qid, "dropped"), RECORD_KIND, reason, parents=parents, stage=STAGE,
                     score=score, query_id=qid, **payload)

    gq = generated_queries.to_dict("records")
    for g in gq:
        qid, cid, style = str(g["id"]), g.get("candidate_id"), str(clean(g.get("style")) or "")
        cand = cands.get(cid)
        if cand is None:
            drop(qid, cid, "unknown_candidate", candidate_id=cid)
            continue
        kind = _combination(style, g, cfg)
        pos_text = corpus_text(cand.get("title"), cand.get("text"))
        pos_image = clean(cand.get("image"))
        if kind is None or (kind != "fused" and not cfg.pass_through):
            drop(qid, cid, "unsupported_style", style=style)
            continue
        if kind == "fused":
            rewritten = clean(g.get("rewritten_query"))
            entity = clean(g.get("entity")) or clean(cand.get("title"))
            if rewritten is None:
                drop(qid, cid, "missing_rewritten_query", style=style)
                continue
            if entity is None:
                drop(qid, cid, "missing_entity", style=style)
                continue
            if pos_text is None:
                drop(qid, cid, "candidate_has_no_text", style=style)
                continue
            text = cfg.query_template.format(entity=entity, title=clean(cand.get("title")) or entity)
            fused_todo.append((g, cand, text))
            continue
        query = clean(g.get("query"))
        if query is None:
            drop(qid, cid, "missing_query", style=style)
            continue
        base = {"query_id": qid, "candidate_id": cid, "pos_id": cid, "style": style, "answer": clean(g.get("answer")),
                "entity": clean(g.get("entity")), "original_query": query, "query_text": query,
                "query_image": None, "query_image_id": None, "retrieved_ids": [], "retrieved_scores": [],
                "image_rule": None, "source_image_rank": None, "retrieval_text": None, "embedder": embedder_name,
                "image_origin": None}
        if kind == "T->T":
            if pos_text is None:
                drop(qid, cid, "candidate_has_no_text", style=style)
                continue
            rows.append({**base, "combination": "T->T", "pos_text": pos_text, "pos_image": None,
                         "image_score": math.nan})
        else:  # T->I
            if pos_image is None:
                drop(qid, cid, "candidate_has_no_image", style=style)
                continue
            row = {**base, "combination": "T->I", "pos_text": None, "pos_image": pos_image, "image_score": math.nan}
            rows.append(row)
            t2i_rows.append(row)

    # T->I: the caption query vs the paragraph's image, scored by the pool's embedder.
    if t2i_rows:
        scores = pool.score_images([r["query_text"] for r in t2i_rows], [r["pos_image"] for r in t2i_rows],
                                   instruction=cfg.instruction)
        for r, s in zip(t2i_rows, scores, strict=True):
            r["image_score"] = float(s)

    # Fused: one pool search per distinct entity text.
    top1_scores: list[float] = []
    source_hits: list[bool] = []
    if fused_todo:
        texts = sorted({t for _, _, t in fused_todo})
        hits = dict(zip(texts, pool.search(texts, cfg.top_k, instruction=cfg.instruction), strict=True))
        own_ids = {c["id"]: pool.id_for_image(clean(c.get("image"))) for _, c, _ in fused_todo}
        for g, cand, text in fused_todo:
            qid, cid = str(g["id"]), cand["id"]
            found = hits[text]
            ids = [i for i, _ in found]
            scores = [float(s) for _, s in found]
            entity = clean(g.get("entity")) or clean(cand.get("title"))
            gen = None
            if use_generator and (not found or (gen_threshold is not None and scores[0] < gen_threshold)):
                key = (entity, _first_sentence(cand.get("text")))
                if key not in generated:
                    generated[key] = generator.generate(*key)
                    if generated[key].path is not None:
                        lineage.keep(generated[key].id, "generated_image", stage=STAGE, image=generated[key].path,
                                     entity=entity, **generated[key].lineage())
                gen = generated[key]
                if gen.path is None:
                    origins["generation_failed"] += 1
                    gen_failure = {"generation_failure": gen.failure}
                    if not found:
                        drop(qid, cid, "image_generation_failed", retrieval_text=text, detail=gen.detail,
                             **gen_failure)
                        continue
                    gen = None
            if gen is not None:
                if (text, gen.path) not in generated_scores:
                    generated_scores[(text, gen.path)] = float(
                        pool.score_images([text], [gen.path], instruction=cfg.instruction)[0])
                score = generated_scores[(text, gen.path)]
                origins["generated"] += 1
                base = {"query_id": qid, "candidate_id": cid, "pos_id": cid, "style": str(g.get("style")),
                        "answer": clean(g.get("answer")), "entity": entity, "original_query": clean(g.get("query")),
                        "query_text": clean(g.get("rewritten_query")), "query_image": gen.path,
                        "query_image_id": gen.id, "retrieved_ids": ids, "retrieved_scores": scores,
                        "image_score": score, "image_rule": "generated", "source_image_rank": None,
                        "retrieval_text": text, "embedder": embedder_name, "image_origin": "generated"}
                pos_text = corpus_text(cand.get("title"), cand.get("text"))
                rows.append({**base, "combination": "IT->T", "pos_text": pos_text, "pos_image": None})
                pos_image = clean(cand.get("image"))
                if cfg.emit_it_it and pos_image is not None and pos_image != gen.path:
                    rows.append({**base, "combination": "IT->IT", "pos_text": pos_text, "pos_image": pos_image})
                continue
            if not found:
                drop(qid, cid, "empty_pool", retrieval_text=text)
                continue
            own = own_ids.get(cid)
            own_rank = ids.index(own) + 1 if own is not None and own in ids else None
            if own is not None:
                source_hits.append(own_rank is not None)
            top1_scores.append(scores[0])
            pick = 0
            if cfg.rule == "prefer_source_image" and own_rank is not None:
                pick = own_rank - 1
            elif cfg.rule == "top1_above_threshold" and threshold is not None and scores[0] < threshold:
                drop(qid, cid, "no_image_above_threshold", score=scores[0], retrieval_text=text,
                     retrieved_ids=ids, retrieved_scores=scores, threshold=threshold)
                continue
            chosen = pool.entry(ids[pick])
            base = {"query_id": qid, "candidate_id": cid, "pos_id": cid, "style": str(g.get("style")),
                    "answer": clean(g.get("answer")), "entity": clean(g.get("entity")) or clean(cand.get("title")),
                    "original_query": clean(g.get("query")), "query_text": clean(g.get("rewritten_query")),
                    "query_image": chosen.image, "query_image_id": chosen.id, "retrieved_ids": ids,
                    "retrieved_scores": scores, "image_score": scores[pick], "image_rule": cfg.rule,
                    "source_image_rank": own_rank, "retrieval_text": text, "embedder": embedder_name,
                    "image_origin": "retrieved"}
            origins["retrieved"] += 1
            pos_text = corpus_text(cand.get("title"), cand.get("text"))
            rows.append({**base, "combination": "IT->T", "pos_text": pos_text, "pos_image": None})
            pos_image = clean(cand.get("image"))
            if cfg.emit_it_it and pos_image is not None and own != chosen.id and pos_image != chosen.image:
                rows.append({**base, "combination": "IT->IT", "pos_text": pos_text, "pos_image": pos_image})

    for r in rows:
        r["id"] = stable_id("fq", r["query_id"], r["combination"], r["query_image_id"])
        parents = [r["query_id"], str(r["candidate_id"])] + ([r["query_image_id"]] if r["query_image_id"] else [])
        score = None if r["image_score"] is None or math.isnan(r["image_score"]) else float(r["image_score"])
        lineage.keep(r["id"], RECORD_KIND, parents=parents, stage=STAGE, score=score, combination=r["combination"],
                     style=r["style"], query_image=r["query_image"], image_rule=r["image_rule"],
                     retrieved_ids=r["retrieved_ids"], retrieved_scores=r["retrieved_scores"],
                     image_origin=r["image_origin"])
    table = pd.DataFrame(rows, columns=list(FUSED_COLUMNS))
    table["image_score"] = table["image_score"].astype("float64")
    table["source_image_rank"] = table["source_image_rank"].astype("Int64")
    table["retrieved_ids"] = [as_list(v) for v in table["retrieved_ids"]]
    table["retrieved_scores"] = [[float(x) for x in as_list(v)] for v in table["retrieved_scores"]]
    object_columns(table, ("id", "query_id", "candidate_id", "query_text", "query_image", "pos_text", "pos_image",
                           "combination", "style", "query_image_id", "pos_id", "answer", "entity", "original_query",
                           "retrieval_text", "image_rule", "embedder", "image_origin"))
    report = FusedReport(
        n_queries=len(gq), n_rows=len(table),
        by_combination=dict(sorted(Counter(table["combination"]).items())) if len(table) else {},
        drops=dict(drops.most_common()),
        image_score=quantiles(table["image_score"].to_numpy(dtype=np.float64)) if len(table) else None,
        top1_score=quantiles(top1_scores),
        source_image_hit_rate=round(float(np.mean(source_hits)), 4) if source_hits else None,
        rule=cfg.rule, top_k=cfg.top_k, embedder=embedder_name, pool_size=len(pool),
        entity_images={"retrieved": origins["retrieved"], "generated": origins["generated"],
                       "generation_failed": origins["generation_failed"]},
        image_generation=generator.ledger.as_dict(generator.config.price_per_image) if use_generator else None,
    )
    log.info("fused_queries: %d generated queries -> %d rows %s; drops %s", report.n_queries, report.n_rows,
             report.by_combination, report.drops)
    return FusedResult(table, lineage, report)
