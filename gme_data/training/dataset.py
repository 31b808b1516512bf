"""The training set: a modality-balanced mixture with a leak-free train/validation split.

* Mixture: rows are grouped by GME's eight modality combinations; configured ratios are
  renormalised over the combinations present, and each combination is downsampled
  (deterministically, by a seeded hash of the row id) so the achieved shares match the ratios.
* Split: ``validation`` when a salted hash of ``source_id`` falls below ``validation_fraction``,
  so all rows of one source document land in the same split, run after run.
* Export: Parquet (the whole table) and one JSONL per split with rows
  ``{"query": {...}, "positive": {...}, "negatives": [...], "instruction": ...}`` where each item
  has ``text`` and/or ``image``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field

from gme_data.errors import InvalidInputError
from gme_data.lineage import StageOutput
from gme_data.mining.embedding import list_value, same_content
from gme_data.records import COMBINATIONS
from gme_data.stage_config import StageConfig, with_changes
from gme_data.tables import value_or_none

#: GME's mix (paper): T->T 1M, I->I 1M, cross-modal 2M, fused 2M (split evenly inside each group).
DEFAULT_RATIOS: dict[str, float] = {
    "T->T": 1 / 6, "I->I": 1 / 6, "T->I": 1 / 6, "I->T": 1 / 6,
    "T->IT": 1 / 12, "IT->T": 1 / 12, "IT->I": 1 / 12, "IT->IT": 1 / 12,
}
SPLITS = ("train", "validation")


class TrainingSetConfig(StageConfig):
    """How the training mixture is drawn (``split_salt``: the split hash's salt; ``stage``: lineage name)."""

    ratios: dict[str, float] | None = Field(default=None, description="Combination -> weight (e.g. "
                                            "{'T->T': 1, 'IT->T': 2}; 0 excludes one); None = GME's balanced "
                                            "mix; renormalised over the combinations present")
    total: int | None = Field(default=None, description="Cap on rows kept (None = as many as the ratios allow)")
    tolerance: float = Field(default=0.02, description="Allowed |achieved - target| share (the gate's bound)")
    validation_fraction: float = Field(default=0.1, description="Share of source documents held out")
    seed: int = Field(default=0, description="Seed of the downsampling")
    split_salt: str = "gme-data-split-v1"
    stage: str = "training_set"

    def model_post_init(self, _context: Any) -> None:
        if not 0.0 <= self.validation_fraction < 1.0:
            raise InvalidInputError(f"training set config: validation_fraction must be in [0, 1), "
                                    f"got {self.validation_fraction}")
        if self.total is not None and self.total < 1:
            raise InvalidInputError(f"training set config: total must be >= 1, got {self.total}")
        if self.tolerance < 0:
            raise InvalidInputError(f"training set config: tolerance must be >= 0, got {self.tolerance}")
        for c, r in (self.ratios or {}).items():
            if c not in COMBINATIONS:
                raise InvalidInputError(f"training set config: unknown combination {c!r} in ratios "
                                        f"(expected one of {COMBINATIONS})")
            if not np.isfinite(r) or r < 0:
                raise InvalidInputError(f"training set config: ratio for {c} must be >= 0, got {r}")


@dataclass
class TrainingSetResult:
    table: pd.DataFrame
    lineage: StageOutput
    report: dict[str, Any] = field(default_factory=dict)


def _unit_hash(*parts: Any) -> float:
    h = hashlib.sha1("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(h[:8], "big") / 2.0**64


def split_of(source_id: Any, validation_fraction: float = 0.1, salt: str = "gme-data-split-v1") -> str:
    """``"validation"`` or ``"train"`` for one source document (pure function of its id)."""
    return "validation" if _unit_hash(salt, source_id) < validation_fraction else "train"


def _combination(row: dict[str, Any]) -> str:
    def code(t: Any, i: Any) -> str:
        t, i = value_or_none(t), value_or_none(i)
        return "IT" if t is not None and i is not None else ("I" if i is not None else "T")

    return f"{code(row.get('query_text'), row.get('query_image'))}->{code(row.get('pos_text'), row.get('pos_image'))}"


def target_shares(ratios: dict[str, float] | None, present: list[str]) -> dict[str, float]:
    """Ratios renormalised over the ``present`` combinations (those with weight > 0)."""
    ratios = DEFAULT_RATIOS if ratios is None else ratios
    w = {c: float(ratios.get(c, 0.0)) for c in present if ratios.get(c, 0.0) > 0}
    total = sum(w.values())
    if total <= 0:
        raise InvalidInputError(f"training set: no combination present in the data ({present}) has a "
                                f"positive ratio in {ratios}")
    return {c: v / total for c, v in w.items()}


def _quotas(counts: dict[str, int], shares: dict[str, float], total: int | None) -> dict[str, int]:
    n_max = min(counts[c] / s for c, s in shares.items())
    n = int(np.floor(n_max + 1e-9)) if total is None else min(total, int(np.floor(n_max + 1e-9)))
    raw = {c: shares[c] * n for c in shares}
    q = {c: min(counts[c], int(np.floor(v))) for c, v in raw.items()}
    # largest remainder, never above what is available
    for c in sorted(raw, key=lambda c: raw[c] - np.floor(raw[c]), reverse=True):
        if sum(q.values()) >= n:
            break
        if q[c] < counts[c]:
            q[c] += 1
    return q


def mixture_report(table: pd.DataFrame, ratios: dict[str, float] | None = None,
                   tolerance: float = 0.02) -> dict[str, Any]:
    """Achieved vs target share per combination, overall and per split; ``ok`` when all are within."""
    if "combination" not in table.columns:
        raise InvalidInputError("training set table has no 'combination' column")
    present = sorted(set(table["combination"]), key=COMBINATIONS.index)
    shares = target_shares(ratios, present) if present else {}
    out: dict[str, Any] = {"tolerance": tolerance, "combinations": {}, "ok": True}
    views = {"all": table}
    if "split" in table.columns:
        views.update({s: table[table["split"] == s] for s in SPLITS})
    for name, view in views.items():
        n = len(view)
        for c in sorted(set(shares) | set(present), key=COMBINATIONS.index):
            cnt = int((view["combination"] == c).sum()) if n else 0
            actual = cnt / n if n else 0.0
            target = shares.get(c, 0.0)
            within = abs(actual - target) <= tolerance + 1e-12
            out["combinations"].setdefault(c, {})[name] = {"count": cnt, "share": round(actual, 6),
                                                           "target": round(target, 6), "within": within}
            if name == "all" and not within:
                out["ok"] = False
    return out


def build_training_set(hard_negatives: pd.DataFrame, config: TrainingSetConfig | None = None,
                       **overrides: Any) -> TrainingSetResult:
    """Mixture by combination + deterministic split; returns the table (``split`` added), lineage
    (kept rows with their split; rows dropped by ``mixture_downsampled`` /
    ``combination_not_in_mixture``) and a report (shares, tolerance, split sizes)."""
    cfg = config or TrainingSetConfig()
    if overrides:
        cfg = with_changes(cfg, **overrides)
    if "id" not in hard_negatives.columns:
        raise InvalidInputError("training set input has no 'id' column")
    df = hard_negatives.reset_index(drop=True).copy()
    if df["id"].duplicated().any():
        dup = df.loc[df["id"].duplicated(), "id"].iloc[0]
        raise InvalidInputError(f"training set input: duplicate sample id {dup!r}")
    rows = df.to_dict("records")
    if "combination" not in df.columns:
        df["combination"] = [_combination(r) for r in rows]
    else:
        df["combination"] = [value_or_none(c) or _combination(r) for c, r in zip(df["combination"], rows, strict=True)]
    bad = df.loc[~df["combination"].isin(COMBINATIONS), ["id", "combination"]]
    if len(bad):
        raise InvalidInputError(f"training set input row id {bad.iloc[0]['id']!r}: unknown combination "
                                f"{bad.iloc[0]['combination']!r}")
    lineage = StageOutput()
    counts = df["combination"].value_counts().to_dict()
    present = sorted(counts, key=COMBINATIONS.index)
    shares = target_shares(cfg.ratios, present) if len(df) else {}
    quotas = _quotas(counts, shares, cfg.total) if shares else {}

    keep = np.zeros(len(df), dtype=bool)
    for c in present:
        idx = np.flatnonzero(df["combination"].to_numpy() == c)
        if c not in quotas:
            for i in idx:
                lineage.drop(str(df.at[i, "id"]), "training_sample", "combination_not_in_mixture",
                             stage=cfg.stage, combination=c)
            continue
        order = sorted(idx, key=lambda i: _unit_hash(cfg.seed, df.at[i, "id"]))
        chosen = set(order[:quotas[c]])
        for i in order:
            if i in chosen:
                keep[i] = True
            else:
                lineage.drop(str(df.at[i, "id"]), "training_sample", "mixture_downsampled", stage=cfg.stage,
                             combination=c)

    out = df[keep].reset_index(drop=True)
    src = out["source_id"] if "source_id" in out.columns else pd.Series([None] * len(out), dtype=object)
    missing_source = 0
    splits = []
    for sid, rid in zip(src, out["id"], strict=True):
        key = value_or_none(sid)
        if key is None:
            missing_source += 1
            key = f"id:{rid}"
        splits.append(split_of(key, cfg.validation_fraction, cfg.split_salt))
    out["split"] = pd.Series(splits, dtype=object)
    pos_ids = out["pos_id"] if "pos_id" in out.columns else pd.Series([None] * len(out), dtype=object)
    for rid, comb, split, pos in zip(out["id"], out["combination"], out["split"], pos_ids, strict=True):
        lineage.keep(str(rid), "training_sample", stage=cfg.stage, reason=split, split=split, combination=comb,
                     pos_id=value_or_none(pos))

    report = {
        "n_input": len(df),
        "n_kept": len(out),
        "n_dropped": len(df) - len(out),
        "drop_reasons": lineage.drop_counts(),
        "target_shares": {c: round(s, 6) for c, s in shares.items()},
        "available": {c: int(counts[c]) for c in present},
        "quotas": quotas,
        "split_sizes": {s: int((out["split"] == s).sum()) for s in SPLITS},
        "n_sources": {s: int(src[out["split"] == s].nunique()) for s in SPLITS},
        "missing_source_id": missing_source,
        "mixture": mixture_report(out, cfg.ratios, cfg.tolerance) if len(out) else {"ok": True},
    }
    report["ratios_ok"] = report["mixture"]["ok"]
    return TrainingSetResult(out, lineage, report)


# ---- validation helpers ---------------------------------------------------------------------

def check_ratios(table: pd.DataFrame, ratios: dict[str, float] | None = None, tolerance: float = 0.02) -> list[str]:
    """Problems (empty = fine): combinations whose share is off target by more than ``tolerance``."""
    rep = mixture_report(table, ratios, tolerance)
    return [f"{c}: share {v['all']['share']:.4f} vs target {v['all']['target']:.4f} "
            f"(tolerance {tolerance})" for c, v in rep["combinations"].items() if not v["all"]["within"]]


def check_no_split_leakage(table: pd.DataFrame) -> list[str]:
    """Problems: source documents (``source_id``) that appear in more than one split."""
    if "split" not in table.columns or "source_id" not in table.columns:
        return ["table needs 'split' and 'source_id' columns"]
    t = table[table["source_id"].map(value_or_none).notna()]
    n = t.groupby("source_id")["split"].nunique()
    leaked = n[n > 1]
    return [f"source {s!r} appears in {int(k)} splits" for s, k in leaked.items()]


def check_negatives_distinct(table: pd.DataFrame) -> list[str]:
    """Problems: negatives equal to their row's positive (same id or same text+image content)."""
    problems = []
    for row in table.to_dict("records"):
        ids, texts, images = (list_value(row.get(c)) for c in ("neg_ids", "neg_texts", "neg_images"))
        for j, nid in enumerate(ids):
            t = value_or_none(texts[j]) if j < len(texts) else None
            im = value_or_none(images[j]) if j < len(images) else None
            if value_or_none(row.get("pos_id")) is not None and str(nid) == str(row.get("pos_id")):
                problems.append(f"row {row.get('id')!r}: negative {j} has the positive's id {nid!r}")
            elif same_content(t, im, value_or_none(row.get("pos_text")), value_or_none(row.get("pos_image"))):
                problems.append(f"row {row.get('id')!r}: negative {j} ({nid!r}) has the positive's content")
    return problems


def validate_training_set(table: pd.DataFrame, ratios: dict[str, float] | None = None,
                          tolerance: float = 0.02) -> dict[str, Any]:
    """All three checks: ``{"ok": bool, "ratios": [...], "leakage": [...], "negatives": [...]}``."""
    res = {"ratios": check_ratios(table, ratios, tolerance) if len(table) else [],
           "leakage": check_no_split_leakage(table),
           "negatives": check_negatives_distinct(table)}
    res["ok"] = not any(res.values())
    return res


# ---- export ------------------------------------------------------------------------------------

def _item(text: Any, image: Any) -> dict[str, str]:
    d = {}
    if value_or_none(text) is not None:
        d["text"] = str(text)
    if value_or_none(image) is not None:
        d["image"] = str(image)
    return d


def jsonl_rows(table: pd.DataFrame) -> Iterator[dict[str, Any]]:
    """Rows as ``{"id", "combination", "split", "instruction", "query", "positive", "negatives"}``."""
    for row in table.to_dict("records"):
        texts, images = list_value(row.get("neg_texts")), list_value(row.get("neg_images"))
        n = max(len(texts), len(images))
        texts += [None] * (n - len(texts))
        images += [None] * (n - len(images))
        yield {
            "id": row.get("id"),
            "combination": row.get("combination"),
            "split": row.get("split"),
            "source_id": value_or_none(row.get("source_id")),
            "instruction": value_or_none(row.get("instruction")),
            "query": _item(row.get("query_text"), row.get("query_image")),
            "positive": {**_item(row.get("pos_text"), row.get("pos_image")), "id": value_or_none(row.get("pos_id"))},
            "negatives": [{**_item(t, im), "id": nid}
                          for t, im, nid in zip(texts, images, list_value(row.get("neg_ids")) + [None] * n,
                                                strict=False)],
        }


def export_training_set(table: pd.DataFrame, out_dir: str | Path, name: str = "training_set") -> dict[str, str]:
    """Write ``{name}.parquet`` and ``{name}.{split}.jsonl``; returns the paths. Writes go to a temp
    file first and are renamed, so a failure never leaves a half-written file."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, str] = {}
    pq = out / f"{name}.parquet"
    tmp = pq.with_suffix(".parquet.tmp")
    table.to_parquet(tmp, index=False)
    tmp.replace(pq)
    paths["parquet"] = str(pq)
    splits = [s for s in SPLITS if "split" in table.columns and (table["split"] == s).any()]
    for s in splits or ["all"]:
        view = table[table["split"] == s] if s != "all" else table
        p = out / f"{name}.{s}.jsonl"
        tmp = p.with_suffix(".jsonl.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            for r in jsonl_rows(view):
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
        tmp.replace(p)
        paths[s] = str(p)
    return paths


def read_training_jsonl(path: str | Path) -> pd.DataFrame:
    """Read an exported JSONL back into training-set columns (inverse of :func:`jsonl_rows`)."""
    recs = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
                q, p, negs = r["query"], r["positive"], r.get("negatives") or []
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise InvalidInputError(f"{path}:{lineno}: not a training row ({exc})") from exc
            recs.append({
                "id": r.get("id"), "combination": r.get("combination"), "split": r.get("split"),
                "source_id": r.get("source_id"), "instruction": r.get("instruction"),
                "query_text": q.get("text"), "query_image": q.get("image"),
                "pos_id": p.get("id"), "pos_text": p.get("text"), "pos_image": p.get("image"),
                "neg_ids": [n.get("id") for n in negs], "neg_texts": [n.get("text") for n in negs],
                "neg_images": [n.get("image") for n in negs],
            })
    return pd.DataFrame(recs)
