"""Training: the modality-balanced training set, InfoNCE losses, samplers and trainers."""

from __future__ import annotations

from gme_data.training.adapter import (
    AdapterEmbedder,
    AdapterTrainable,
    ResidualAdapter,
    load_adapter_embedder,
)
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
from gme_data.training.evaluation import evaluate_retrieval
from gme_data.training.loading import is_trained_model_dir, load_trained_embedder
from gme_data.training.losses import duplicate_mask, info_nce
from gme_data.training.run import make_trainable, train_embedder
from gme_data.training.sampler import CombinationBatchSampler
from gme_data.training.trainer import TrainableModel, TrainConfig, latest_checkpoint, plot_training, train

__all__ = ["AdapterEmbedder", "AdapterTrainable", "GmeLoraTrainable", "ResidualAdapter",
           "load_adapter_embedder", "load_gme_lora_embedder", "CombinationBatchSampler", "TrainConfig", "TrainableModel", "duplicate_mask", "evaluate_retrieval",
           "info_nce", "is_trained_model_dir", "latest_checkpoint", "load_trained_embedder", "plot_training",
           "train", "train_embedder", "make_trainable",
           "DEFAULT_RATIOS", "TrainingSetConfig", "TrainingSetResult", "build_training_set",
           "check_negatives_distinct", "check_no_split_leakage", "check_ratios", "export_training_set",
           "mixture_report", "read_training_jsonl", "split_of", "validate_training_set"]


def __getattr__(name: str):
    # the GME family pulls in transformers / peft: import it on first use only
    if name in ("GmeLoraTrainable", "load_gme_lora_embedder"):
        from gme_data.training import gme_lora

        return getattr(gme_lora, name)
    raise AttributeError(f"module 'gme_data.training' has no attribute {name!r}")
