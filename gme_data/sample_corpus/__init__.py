"""The bundled sample corpus: ~88 hand-written Wikipedia-style paragraphs over GME's 15 domains.

Text lives in ``data/*.jsonl`` (three clean shards and a ``dirty`` shard of planted bad rows); images
are rendered at build time (see :mod:`gme_data.sample_corpus.render`).
"""

from __future__ import annotations

from gme_data.sample_corpus.build import (
    CLEAN_SHARDS,
    DIRTY_SHARD,
    SOURCE_NAME,
    build_sample_corpus,
    labelled_paragraphs,
    load_articles,
    sample_source_specs,
)

__all__ = ["CLEAN_SHARDS", "DIRTY_SHARD", "SOURCE_NAME", "build_sample_corpus", "labelled_paragraphs",
           "load_articles", "sample_source_specs"]
