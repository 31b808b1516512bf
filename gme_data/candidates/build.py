"""``build_candidates``: raw rows -> cleaned, de-duplicated, domain-classified, balanced candidates."""

from __future__ import annotations

from collections import Counter
from functools import lru_cache
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from gme_data.candidates.balance import domain_cap, over_cap
from gme_data.candidates.classifier import DomainClassifier, default_model_path
from gme_data.candidates.config import CandidatesConfig
from gme_data.candidates.dedup import exact_text_duplicates, near_duplicate_images
from gme_data.candidates.normalise import normalise_text
from gme_data.errors import InvalidInputError
from gme_data.lineage import StageOutput
from gme_data.records import stable_id
from gme_data.tables import passage_text

STAGE = "candidates"
KIND = "candidate"
CANDIDATE_COLUMNS: tuple[str, ...] = ("id", "title", "text", "image", "source", "shard", "domain",
                                      "domain_confidence", "url")
REQUIRED_RAW_COLUMNS: tuple[str, ...] = ("id", "title", "text", "image", "source", "shard", "url")


@lru_cache(maxsize=8)
def _classifier(model_path: str, temperature: float, prompts: tuple[tuple[str, tuple[str, ...]], ...]
                ) -> DomainClassifier:
    return DomainClassifier(model_path, temperature=temperature, domain_prompts=dict(prompts))


def get_classifier(config: CandidatesConfig) -> DomainClassifier:
    """The config's classifier, built once per process (model and domain prototypes cached)."""
    prompts = tuple(config.domain_prompts().items())
    return _classifier(config.model_path or default_model_path(), config.temperature, prompts)


def classification_text(title: str | None, text: str | None) -> str | None:
    """What the classifier reads: :func:`gme_data.tables.passage_text`, ``"<title>. <text>"`` (either part
    may be missing), the string the consistency filter embeds for the candidate too."""
    return passage_text(title, text)


def _check_columns(raw_df: pd.DataFrame) -> None:
    missing = [c for c in REQUIRED_RAW_COLUMNS if c not in raw_df.columns]
    if missing:
        raise InvalidInputError(f"candidates: raw table lacks column(s) {', '.join(missing)} "
                                f"(has {', '.join(map(str, raw_df.columns))})")
    if raw_df["id"].duplicated().any():
        dup = raw_df.loc[raw_df["id"].duplicated(), "id"].iloc[0]
        raise InvalidInputError(f"candidates: raw table has duplicate id {dup!r}")


def build_candidates(raw_df: pd.DataFrame, config: CandidatesConfig | None = None
                     ) -> tuple[pd.DataFrame, StageOutput, dict[str, Any]]:
    """Normalise, de-duplicate, classify into domains, filter by confidence and balance.

    Drop reasons: ``exact_duplicate_text``, ``near_duplicate_image`` (score = Hamming distance),
    ``unreadable_image``, ``no_text`` (nothing to classify), ``low_domain_confidence`` and
    ``domain_balance`` (score = confidence). Kept rows get id ``cand-...`` with the raw id as parent.
    Returns the candidates table, its lineage and a report (counts, drops, per-domain numbers).
    """
    config = config or CandidatesConfig()
    _check_columns(raw_df)
    rows = raw_df.to_dict(orient="records")
    raw_ids = [str(r["id"]) for r in rows]
    cand_ids = [stable_id("cand", rid) for rid in raw_ids]
    texts = [normalise_text(r["text"]) for r in rows]
    titles = [normalise_text(r["title"]) for r in rows]
    images = [None if pd.isna(r["image"]) else str(r["image"]) for r in rows]
    out = StageOutput()
    dropped: dict[int, str] = {}

    def drop(i: int, reason: str, score: float | None = None, **payload: Any) -> None:
        dropped[i] = reason
        out.drop(cand_ids[i], KIND, reason, parents=[raw_ids[i]], stage=STAGE, score=score,
                 shard=rows[i]["shard"], source=rows[i]["source"], **payload)

    if config.dedup_text:
        for dup in exact_text_duplicates(texts):
            drop(dup.index, "exact_duplicate_text", 0.0, duplicate_of=cand_ids[dup.of_index])
    if config.dedup_images:
        live_images = [None if i in dropped else p for i, p in enumerate(images)]
        dups, unreadable = near_duplicate_images(
            tqdm(live_images, desc="phash", disable=not config.show_progress), config.phash_distance)
        for dup in dups:
            drop(dup.index, "near_duplicate_image", float(dup.distance), duplicate_of=cand_ids[dup.of_index])
        for i in unreadable:
            drop(i, "unreadable_image", image=images[i])

    to_classify = []
    for i in range(len(rows)):
        if i in dropped:
            continue
        if classification_text(titles[i], texts[i]) is None:
            drop(i, "no_text")
        else:
            to_classify.append(i)
    classifier = get_classifier(config)
    prediction = classifier.predict([classification_text(titles[i], texts[i]) for i in to_classify],
                                    show_progress=config.show_progress)
    domain = dict(zip(to_classify, prediction.domains, strict=True))
    confidence = {i: float(c) for i, c in zip(to_classify, prediction.confidences, strict=True)}

    confident = []
    for i in to_classify:
        if confidence[i] < config.threshold:
            drop(i, "low_domain_confidence", confidence[i], domain=domain[i])
        else:
            confident.append(i)
    before_balance = Counter(domain[i] for i in confident)
    cap = domain_cap(dict(before_balance), config.max_per_domain, config.balance_ratio)
    for k in sorted(over_cap([domain[i] for i in confident], [confidence[i] for i in confident],
                             [cand_ids[i] for i in confident], cap)):
        i = confident[k]
        drop(i, "domain_balance", confidence[i], domain=domain[i], cap=cap)

    kept = [i for i in confident if i not in dropped]
    for i in kept:
        out.keep(cand_ids[i], KIND, parents=[raw_ids[i]], stage=STAGE, score=confidence[i], domain=domain[i],
                 shard=rows[i]["shard"], source=rows[i]["source"])
    table = pd.DataFrame([{"id": cand_ids[i], "title": titles[i], "text": texts[i], "image": images[i],
                           "source": rows[i]["source"], "shard": rows[i]["shard"], "domain": domain[i],
                           "domain_confidence": confidence[i], "url": normalise_text(rows[i]["url"])}
                          for i in kept], columns=list(CANDIDATE_COLUMNS))
    table = table.astype(object).where(table.notna(), None).astype({"domain_confidence": "float64"})
    per_domain = Counter(domain[i] for i in kept)
    report = {
        "n_raw": len(rows),
        "n_candidates": len(kept),
        "drops": out.drop_counts(),
        "per_domain": {d: per_domain.get(d, 0) for d in classifier.domains},
        "per_domain_before_balance": {d: before_balance.get(d, 0) for d in classifier.domains},
        "balance_cap": cap,
        "mean_confidence": float(sum(confidence[i] for i in kept) / len(kept)) if kept else None,
        "config": {k: v for k, v in config.as_dict().items() if k != "domains"} | {"domains": classifier.domains},
        "model": classifier.model_path,
    }
    return table, out, report
