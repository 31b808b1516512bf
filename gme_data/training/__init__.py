"""Training: the modality-balanced training set, InfoNCE losses, samplers and trainers."""

from __future__ import annotations

from gme_data.training.dataset import (
    DEFAULT_RATIOS,
    TrainingSetConfig,
    TrainingSetResult,
    build_training_set,
    check_negatives_distinct,
    check_no_split_leakage,
    check_ratios,
    export_training_set,
    mixture_report,
    read_training_jsonl,
    split_of,
    validate_training_set,
)

__all__ = ["DEFAULT_RATIOS", "TrainingSetConfig", "TrainingSetResult", "build_training_set",
           "check_negatives_distinct", "check_no_split_leakage", "check_ratios", "export_training_set",
           "mixture_report", "read_training_jsonl", "split_of", "validate_training_set"]
