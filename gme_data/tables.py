"""Table-cell and table helpers every stage shares: one missing-value rule, one home.

A cell is *missing* when it is None, ``pd.NA``, a float NaN or a blank string. Stages read cells
through :func:`clean` (stripped text; what the filters and fused queries compare) or
:func:`value_or_none` (the value as stored; what mining, training and exports pass on), through
:func:`text_or_none` (any value as stripped text; image-pool captions) or :func:`strict_text`
(text or nothing else; the candidates table of query generation).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from gme_data.errors import InvalidInputError

if TYPE_CHECKING:
    from gme_data.evaluation.runner import SuiteResult

PAIR_SEPARATOR = "\x1f"


def is_missing(value: Any) -> bool:
    """True for None, ``pd.NA``, a float NaN and a blank (whitespace-only) string."""
    if value is None or value is pd.NA:
        return True
    if isinstance(value, (float, np.floating)) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def clean(value: Any) -> Any:
    """None for a missing cell; a string stripped; any other value as it is."""
    if is_missing(value):
        return None
    return value.strip() if isinstance(value, str) else value


def value_or_none(value: Any) -> Any:
    """None for a missing cell; the value as stored otherwise (strings keep their spaces)."""
    return None if is_missing(value) else value


def text_or_none(value: Any) -> str | None:
    """None for a missing cell; any other value as stripped text."""
    return None if is_missing(value) else str(value).strip()


def strict_text(value: Any, column: str, row_id: str, table: str = "candidates") -> str | None:
    """None for a missing cell; a stripped string; anything else is an :class:`InvalidInputError`."""
    if is_missing(value):
        return None
    if not isinstance(value, str):
        raise InvalidInputError(f"{table} row {row_id!r}: column {column!r} must be str or None, "
                                f"got {type(value).__name__}")
    return value.strip()


def corpus_text(title: Any, text: Any) -> str | None:
    """GME's corpus text: ``title + " " + text`` (the title once), or whichever exists."""
    title, text = clean(title), clean(text)
    if title and text and not str(text).startswith(str(title)):
        return f"{title} {text}"
    return text if text is not None else title


def passage_text(title: Any, text: Any) -> str | None:
    """What the MiniLM text models read for a candidate paragraph: ``"<title>. <text>"`` (either part may
    be missing; None when both are). The domain classifier and the consistency filter's corpus both read
    this one string, so a paragraph is embedded once per model (the vector cache serves the second);
    GME's own corpus text for training and evaluation stays :func:`corpus_text`."""
    parts = [p for p in (clean(title), clean(text)) if p]
    return ". ".join(str(p) for p in parts) if parts else None


def require_columns(df: Any, columns: Iterable[str], table: str) -> None:
    """:class:`InvalidInputError` naming ``table`` unless ``df`` is a DataFrame holding ``columns``."""
    if not isinstance(df, pd.DataFrame):
        raise InvalidInputError(f"{table}: expected a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InvalidInputError(f"{table} table: missing columns {missing} (has {list(df.columns)})")


def pair_key(df: pd.DataFrame, q_text: str, q_image: str, p_text: str, p_image: str) -> pd.Series:
    """One string per (query, positive) pair of ``df``'s four columns, for uniqueness checks."""
    cols = [df[c].fillna("").astype(str) for c in (q_text, q_image, p_text, p_image)]
    return cols[0] + PAIR_SEPARATOR + cols[1] + PAIR_SEPARATOR + cols[2] + PAIR_SEPARATOR + cols[3]


def dataset_rows(result: SuiteResult, label: str) -> list[dict[str, Any]]:
    """One row per (model, dataset) of an evaluation: the headline score, every computed metric
    (``m_<metric>``, x100) and how it was produced; ``label`` names the model's role."""
    return [{"model": label, "model_name": result.model, "dataset": d.dataset, "task": d.task,
             "category": d.category, "metric": d.metric_key, "score": float(d.main_score),
             "num_queries": d.num_queries, "num_candidates": d.num_candidates,
             "seconds": d.seconds, "corpus_from_cache": d.corpus_from_cache,
             "instruction_set": d.instruction_set, "revision": d.revision, "runtime_profile": d.runtime_profile,
             **{f"m_{k.replace('@', '_at_')}": float(v) for k, v in d.scores.items()}}
            for d in result.datasets.values()]
