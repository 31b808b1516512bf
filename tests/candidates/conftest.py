"""Shared fixtures: the sample corpus read once and its candidates built once per test session."""

from __future__ import annotations

import pandas as pd
import pytest

from gme_data.candidates import CandidatesConfig, build_candidates
from gme_data.images import ImageStore
from gme_data.sample_corpus import build_sample_corpus, sample_source_specs
from gme_data.sources import read_sources


@pytest.fixture(scope="session")
def sample_raw(tmp_path_factory) -> pd.DataFrame:
    root = tmp_path_factory.mktemp("sample")
    manifests = build_sample_corpus(root / "corpus", show_progress=False)
    raw, _ = read_sources(sample_source_specs(manifests), ImageStore(root / "store"), show_progress=False)
    return raw


@pytest.fixture(scope="session")
def sample_candidates(sample_raw):
    return build_candidates(sample_raw, CandidatesConfig(show_progress=False))
