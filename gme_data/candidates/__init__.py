"""The candidates stage: clean, de-duplicate, domain-classify (15 domains) and balance raw rows.

``build_candidates(raw_df, CandidatesConfig(...)) -> (candidates table, StageOutput, report)``.
"""

from __future__ import annotations

from gme_data.candidates.build import CANDIDATE_COLUMNS, build_candidates, classification_text, get_classifier
from gme_data.candidates.classifier import DomainClassifier, DomainPrediction, default_model_path
from gme_data.candidates.config import CandidatesConfig
from gme_data.candidates.domains import DOMAIN_PROMPTS, DOMAINS
from gme_data.candidates.normalise import normalise_text

__all__ = ["CANDIDATE_COLUMNS", "DOMAINS", "DOMAIN_PROMPTS", "CandidatesConfig", "DomainClassifier",
           "DomainPrediction", "build_candidates", "classification_text", "default_model_path",
           "get_classifier", "normalise_text"]
