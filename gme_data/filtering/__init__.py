"""Fused-query construction and GME's sample filters (stages ``fused_queries`` and ``filtered_samples``).

- :func:`build_fused_queries`: attach the entity's image (text -> image retrieval in an
  :class:`~gme_data.pool.ImagePool`) to each rewritten query; pass t2t / t2i queries through.
- :func:`filter_samples`: image-text score threshold, consistency filter (positive in a text
  retriever's top 20), dedup (exact pairs, near-duplicate text + pHash), answer/entity leak and
  length rules; every drop keeps its reason and score.
"""

from __future__ import annotations

from gme_data.filtering.config import (
    DEFAULT_IMAGE_SCORE_THRESHOLDS,
    FILTERS,
    IMAGE_RULES,
    FilterConfig,
    FusedConfig,
    resolve_threshold,
)
from gme_data.filtering.filters import (
    FILTER_REASONS,
    SAMPLE_COLUMNS,
    FilterReport,
    FilterResult,
    filter_samples,
)
from gme_data.filtering.fused import FUSED_COLUMNS, FusedReport, FusedResult, build_fused_queries
from gme_data.filtering.text_retriever import TextRetriever, load_text_retriever

__all__ = [
    "DEFAULT_IMAGE_SCORE_THRESHOLDS", "FILTERS", "FILTER_REASONS", "FUSED_COLUMNS", "IMAGE_RULES", "SAMPLE_COLUMNS",
    "FilterConfig", "FilterReport", "FilterResult", "FusedConfig", "FusedReport", "FusedResult", "TextRetriever",
    "build_fused_queries", "filter_samples", "load_text_retriever", "resolve_threshold",
]
