"""Drift of a stage against the previous run of the same asset and partition.

Each report leaves a small summary (kept fraction, drop rate per reason, a sample of each filter
score) in ``<reports>/_history/<asset>__<partition>/<run_id>.json``; the next run of that asset and
partition compares itself with the latest summary of another run. A change is *flagged* when a
fraction moves by more than ``tolerance`` (absolute, default 0.10) or a score distribution's
Kolmogorov-Smirnov distance exceeds ``ks_tolerance`` (default 0.30). Both come from
``GME_DATA_DRIFT_TOLERANCE`` / ``GME_DATA_DRIFT_KS_TOLERANCE`` when set.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from gme_data.errors import InvalidInputError
from quality.names import segment
from quality.stage_view import StageView

HISTORY = "_history"
MAX_SAMPLE = 500
DEFAULT_TOLERANCE = 0.10
DEFAULT_KS_TOLERANCE = 0.30


def tolerances() -> tuple[float, float]:
    """(fraction tolerance, KS tolerance) from the environment, checked to lie in (0, 1]."""
    out = []
    for var, default in (("GME_DATA_DRIFT_TOLERANCE", DEFAULT_TOLERANCE),
                         ("GME_DATA_DRIFT_KS_TOLERANCE", DEFAULT_KS_TOLERANCE)):
        raw = os.environ.get(var, "").strip()
        try:
            value = float(raw) if raw else default
        except ValueError:
            raise InvalidInputError(f"{var}={raw!r} is not a number (a tolerance in (0, 1])") from None
        if not 0 < value <= 1:
            raise InvalidInputError(f"{var}={raw!r} must lie in (0, 1]")
        out.append(value)
    return out[0], out[1]


def summarize(view: StageView, run_id: str) -> dict[str, Any]:
    """What the next run compares with: counts, rates and up to 500 values of each score."""
    samples = {}
    rng = np.random.default_rng(0)
    for s in view.scores():
        values = s.values if s.values.size <= MAX_SAMPLE else rng.choice(s.values, MAX_SAMPLE, replace=False)
        samples[s.name] = [round(float(v), 5) for v in values]
    return {"run_id": run_id, "written_at": datetime.now(timezone.utc).isoformat(), "n_in": view.n_in,
            "n_kept": view.n_kept, "kept_fraction": view.kept_fraction, "drop_rates": view.drop_rates(),
            "scores": samples}


def _history_dir(reports_root: Path, asset: str, partition: str | None) -> Path:
    return Path(reports_root) / HISTORY / segment(f"{asset}__{partition or '__all__'}")


def previous_summary(reports_root: Path, asset: str, partition: str | None, run_id: str) -> dict[str, Any] | None:
    """The latest summary of this asset and partition written by another run, if any."""
    folder = _history_dir(reports_root, asset, partition)
    best: dict[str, Any] | None = None
    for f in folder.glob("*.json") if folder.is_dir() else []:
        try:
            s = json.loads(f.read_text())
        except (OSError, ValueError):
            continue  # a torn or foreign file is no history
        if s.get("run_id") == run_id:
            continue
        if best is None or str(s.get("written_at", "")) > str(best.get("written_at", "")):
            best = s
    return best


def save_summary(reports_root: Path, asset: str, partition: str | None, summary: dict[str, Any]) -> Path:
    folder = _history_dir(reports_root, asset, partition)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{segment(str(summary['run_id']))}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(summary))
    tmp.replace(path)
    return path


def ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic: the largest gap between the empirical CDFs."""
    a, b = np.sort(np.asarray(a, float)), np.sort(np.asarray(b, float))
    if not a.size or not b.size:
        return 0.0 if a.size == b.size else 1.0
    grid = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, grid, side="right") / a.size
    cdf_b = np.searchsorted(b, grid, side="right") / b.size
    return float(np.max(np.abs(cdf_a - cdf_b)))


@dataclass
class DriftRow:
    """One compared number: previous, current, change and whether it exceeds its tolerance."""

    metric: str
    previous: float | None
    current: float | None
    change: float
    tolerance: float
    flagged: bool


@dataclass
class Drift:
    """This run against the previous one (``previous_run`` None: nothing to compare with yet)."""

    previous_run: str | None
    rows: list[DriftRow] = field(default_factory=list)
    score_pairs: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @property
    def flagged(self) -> list[DriftRow]:
        return [r for r in self.rows if r.flagged]

    def headline(self) -> str:
        if self.previous_run is None:
            return "first run of this asset and partition: no drift to compare"
        if not self.flagged:
            return f"no change beyond tolerance against run {self.previous_run}"
        return (f"{len(self.flagged)} change(s) beyond tolerance against run {self.previous_run}: "
                + "; ".join(f"{r.metric} {r.previous} -> {r.current}" for r in self.flagged[:4]))


def _round(v: float | None) -> float | None:
    return None if v is None else round(float(v), 4)


def compare(previous: dict[str, Any] | None, current: dict[str, Any], tolerance: float | None = None,
            ks_tolerance: float | None = None) -> Drift:
    """Compare two summaries: kept fraction, every reason's drop rate, every score's KS distance."""
    env_tol, env_ks = tolerances()
    tol = env_tol if tolerance is None else tolerance
    ks_tol = env_ks if ks_tolerance is None else ks_tolerance
    if previous is None:
        return Drift(None)
    drift = Drift(str(previous.get("run_id")))
    pk, ck = previous.get("kept_fraction"), current.get("kept_fraction")
    if pk is not None and ck is not None:
        change = float(ck) - float(pk)
        drift.rows.append(DriftRow("kept fraction", _round(pk), _round(ck), round(change, 4), tol, abs(change) > tol))
    prates, crates = previous.get("drop_rates") or {}, current.get("drop_rates") or {}
    for reason in sorted(set(prates) | set(crates)):
        p, c = float(prates.get(reason, 0.0)), float(crates.get(reason, 0.0))
        drift.rows.append(DriftRow(f"drop rate: {reason}", _round(p), _round(c), round(c - p, 4), tol,
                                   abs(c - p) > tol))
    pscores, cscores = previous.get("scores") or {}, current.get("scores") or {}
    for name in sorted(set(pscores) & set(cscores)):
        a, b = np.asarray(pscores[name], float), np.asarray(cscores[name], float)
        d = ks_distance(a, b)
        drift.rows.append(DriftRow(f"score distribution: {name} (KS distance)",
                                   _round(float(np.median(a))) if a.size else None,
                                   _round(float(np.median(b))) if b.size else None,
                                   round(d, 4), ks_tol, d > ks_tol))
        drift.score_pairs[name] = (a, b)
    return drift
