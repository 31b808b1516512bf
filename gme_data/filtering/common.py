"""Small helpers shared by ``fused_queries`` and ``filtered_samples``."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from gme_data.tables import clean

QUANTILES = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)

#: Query instructions used when gme_data.retrieval.instructions is unavailable.
_LOCAL_INSTRUCTIONS: dict[str, str] = {
    "T->T": "Given a query, retrieve relevant passages that answer the query.",
    "I->I": "Find an image that looks similar to the given image.",
    "T->I": "Find an image that matches the given text.",
    "I->T": "Find a text that describes the given image.",
    "T->IT": "Find an image with a description that matches the given text.",
    "IT->T": "Find a text that answers the question about the given image.",
    "IT->I": "Find an image that matches the given image and text.",
    "IT->IT": "Find an image with a description that answers the question about the given image.",
}


def default_instructions() -> dict[str, str]:
    """Per-combination query instructions: :mod:`gme_data.retrieval.instructions` defaults if present."""
    try:
        from gme_data.retrieval.instructions import DEFAULT_INSTRUCTIONS
    except ImportError:  # pragma: no cover - the retrieval package ships with gme_data
        return dict(_LOCAL_INSTRUCTIONS)
    return {**_LOCAL_INSTRUCTIONS, **DEFAULT_INSTRUCTIONS}


def quantiles(values: Sequence[float] | np.ndarray) -> dict[str, float] | None:
    """``{"n": ..., "mean": ..., "q0": ..., "q50": ..., "q100": ...}`` over the finite values, or None."""
    arr = np.asarray([v for v in values if v is not None], dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        return None
    out: dict[str, float] = {"n": int(arr.size), "mean": round(float(arr.mean()), 4)}
    for q in QUANTILES:
        out[f"q{int(q * 100)}"] = round(float(np.quantile(arr, q)), 4)
    return out


def object_columns(df: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    """Make ``columns`` object dtype with None (not NaN) for missing values: text/path columns are
    "str or None" (pandas 3 would otherwise infer its string dtype with NaN)."""
    for c in columns:
        df[c] = pd.Series([clean(v) for v in df[c]], index=df.index, dtype=object)
    return df


def as_list(value: Any) -> list:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    if isinstance(value, np.ndarray):
        return value.tolist()
    return list(value)
