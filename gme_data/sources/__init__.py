"""Raw sources: local manifests, image folders, Hugging Face datasets and Wikipedia-style articles.

``read_source(SourceSpec(...), ImageStore(...)) -> (raw table, StageOutput)``.
"""

from __future__ import annotations

from gme_data.sources.policy import ReadPolicy
from gme_data.sources.reader import read_source, read_sources
from gme_data.sources.spec import RAW_COLUMNS, SOURCE_KINDS, SourceSpec

__all__ = ["RAW_COLUMNS", "SOURCE_KINDS", "ReadPolicy", "SourceSpec", "read_source", "read_sources"]
