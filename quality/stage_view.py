"""What a stage report shows, pulled out of one stage's output table and lineage records.

A :class:`StageView` answers the report's questions without knowing which stage it is: the filter
scores it can find (with the threshold that decided them), query/passage lengths, drops per reason,
kept rows per combination and per domain, and, for each dropped record, the input row it came from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from gme_data.lineage import DROPPED, StageOutput


@dataclass
class ScoreSeries:
    """One distribution to draw: its values, the threshold that cut it and how to label the axis."""

    name: str
    title: str
    xlabel: str
    values: np.ndarray
    threshold: float | None = None
    threshold_label: str = "threshold"


#: (score name, title, x-axis label) of the filter scores a report looks for.
SCORE_LABELS: dict[str, tuple[str, str]] = {
    "image_score": ("Image-text score", "image-text score (cosine similarity, no unit)"),
    "consistency_rank": ("Consistency rank of the positive", "rank of the positive in the text retriever (1 = top)"),
    "dedup_similarity": ("Near-duplicate similarity", "query similarity to the kept duplicate (cosine, no unit)"),
    "hard_negative_margin": ("Hard-negative score minus positive score",
                             "negative score - positive score (cosine difference, no unit)"),
    "record_score": ("Stage score of each record", "lineage score (records.score, no unit)"),
}
QUERY_COLUMNS = ("query_text", "query")
PASSAGE_COLUMNS = ("pos_text", "text")


def _finite(values: Any) -> np.ndarray:
    arr = pd.to_numeric(pd.Series(list(values), dtype=object), errors="coerce").to_numpy(dtype=np.float64)
    return arr[np.isfinite(arr)]


@dataclass
class StageView:
    """One stage partition's output, its lineage records and, optionally, the input rows it judged."""

    asset: str
    table: pd.DataFrame
    output: StageOutput
    thresholds: dict[str, float | None] = field(default_factory=dict)
    inputs: pd.DataFrame | None = None
    domains: pd.Series | None = None

    # -- counts --------------------------------------------------------------------------------
    @property
    def n_records(self) -> int:
        return len(self.output.records)

    @property
    def n_kept(self) -> int:
        return len(self.table) if isinstance(self.table, pd.DataFrame) else 0

    @property
    def n_in(self) -> int:
        """Rows the stage judged: its lineage records, or its output when it wrote none."""
        return max(self.n_records, self.n_kept)

    @property
    def kept_fraction(self) -> float | None:
        return round(self.n_kept / self.n_in, 4) if self.n_in else None

    def drop_counts(self) -> dict[str, int]:
        return self.output.drop_counts()

    def drop_rates(self) -> dict[str, float]:
        n = self.n_in
        return {reason: round(c / n, 4) for reason, c in self.drop_counts().items()} if n else {}

    # -- distributions ---------------------------------------------------------------------------
    def _payload_values(self, key: str, only: dict[str, str] | None = None) -> np.ndarray:
        vals = []
        for r in self.output.records:
            if only and any(str(r.payload.get(k)) != v for k, v in only.items()):
                continue
            if key in r.payload:
                vals.append(r.payload[key])
        return _finite(vals)

    def _series(self, name: str, values: np.ndarray, threshold_key: str | None = None,
                threshold_label: str = "threshold") -> ScoreSeries:
        title, xlabel = SCORE_LABELS[name]
        thr = self.thresholds.get(threshold_key or name)
        thr = None if thr is None or (isinstance(thr, float) and math.isnan(thr)) else float(thr)
        return ScoreSeries(name, title, xlabel, values, thr, threshold_label)

    def scores(self) -> list[ScoreSeries]:
        """Every filter score this stage has, with its threshold (those without values are left out)."""
        out: list[ScoreSeries] = []
        image = self._payload_values("image_score")
        if not image.size and "image_score" in self.table.columns:
            image = _finite(self.table["image_score"])
        if image.size:
            out.append(self._series("image_score", image, threshold_label="drop below"))
        rank = self._payload_values("consistency_rank")
        if rank.size:
            out.append(self._series("consistency_rank", rank, threshold_label="top-k cut"))
        dedup = _finite(r.score for r in self.output.records
                        if r.status == DROPPED and r.payload.get("filter") == "dedup")
        if dedup.size or self.thresholds.get("dedup_similarity") is not None:
            out.append(self._series("dedup_similarity", dedup, threshold_label="duplicate at/above"))
        margin = self.hard_negative_margins()
        if margin.size:
            out.append(self._series("hard_negative_margin", margin, threshold_label="false-negative guard"))
        if not out:
            rec = _finite(r.score for r in self.output.records)
            if rec.size:
                out.append(self._series("record_score", rec))
        return out

    def hard_negative_margins(self) -> np.ndarray:
        """Every mined negative's score minus its positive's score (mining stages)."""
        t = self.table
        if not {"neg_scores", "positive_score"} <= set(t.columns) or t.empty:
            return np.zeros(0)
        diffs: list[float] = []
        for negs, pos in zip(t["neg_scores"], t["positive_score"], strict=True):
            if negs is None or pos is None or (isinstance(pos, float) and math.isnan(pos)):
                continue
            diffs.extend(float(s) - float(pos) for s in list(negs))
        return _finite(diffs)

    def lengths(self) -> dict[str, np.ndarray]:
        """Characters per query and per passage, from the output table's first matching columns."""
        out: dict[str, np.ndarray] = {}
        for label, cols in (("query", QUERY_COLUMNS), ("passage", PASSAGE_COLUMNS)):
            col = next((c for c in cols if c in self.table.columns), None)
            if col is not None:
                s = self.table[col].dropna().astype(str).str.len()
                if len(s):
                    out[label] = s.to_numpy(dtype=np.float64)
        return out

    def kept_by(self, column: str) -> pd.Series:
        """Kept rows per value of ``column`` (``domain`` falls back to :attr:`domains`)."""
        if column == "domain" and self.domains is not None:
            s = self.domains
        elif column in self.table.columns:
            s = self.table[column]
        else:
            return pd.Series(dtype=int)
        return s.fillna("(none)").astype(str).value_counts().sort_index()

    # -- drop examples -----------------------------------------------------------------------------
    def input_row(self, record_id: str) -> dict[str, Any]:
        """The input row a record was judged from: by its own id, else by its first parent's id."""
        if self.inputs is None or "id" not in self.inputs.columns or self.inputs.empty:
            return {}
        by_id = self._input_index()
        if record_id in by_id:
            return by_id[record_id]
        for e in self.output.edges:
            if e.child_id == record_id and e.parent_id in by_id:
                return by_id[e.parent_id]
        return {}

    def _input_index(self) -> dict[str, dict[str, Any]]:
        if not hasattr(self, "_index_cache"):
            assert self.inputs is not None
            self._index_cache = {str(r["id"]): r for r in self.inputs.to_dict("records")}
        return self._index_cache
