"""One call per training stage (what the ``gme_model`` asset runs): pick the family, train, report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from gme_data.errors import InvalidInputError
from gme_data.training.trainer import TrainConfig, train

FAMILIES = ("adapter", "gme-lora")


def make_trainable(family: str = "adapter", base: Any = None, init_from: str | Path | None = None,
                   **family_options: Any) -> Any:
    """The trainable model of ``family``.

    ``adapter``: ``base`` = None (offline default), a name ``load_embedder`` knows, or an embedder
    object; options ``hidden``, ``per_role``, ``base_options``, ``device``.
    ``gme-lora``: ``base`` = a GME checkpoint name/folder (``"gme-2b"``) or a loaded ``GmeQwen2VL``;
    options ``r``, ``alpha``, ``dropout``, ``gradient_checkpointing``, ``device``, ``dtype``, ``save_base``,
    plus runtime options (``max_image_tokens``, ``position_mode``, ...).
    ``init_from``: a saved model folder of the same family to continue from (second stage).
    """
    if family == "adapter":
        from gme_data.training.adapter import AdapterTrainable

        return AdapterTrainable(base, init_from=init_from, **family_options)
    if family == "gme-lora":
        from gme_data.training.gme_lora import GmeLoraTrainable

        if base is None:
            raise InvalidInputError("family 'gme-lora' needs base= (e.g. 'gme-2b', a folder, or a GmeQwen2VL)")
        if isinstance(base, (str, Path)):
            return GmeLoraTrainable(base=str(base), init_from=init_from, **family_options)
        return GmeLoraTrainable(base, init_from=init_from, **family_options)
    raise InvalidInputError(f"unknown model family {family!r} (expected one of {FAMILIES})")


def train_embedder(table: pd.DataFrame, output_dir: str | Path, family: str = "adapter", base: Any = None,
                   config: TrainConfig | None = None, init_from: str | Path | None = None,
                   resume: str | Path | bool | None = None, family_options: dict[str, Any] | None = None,
                   **train_overrides: Any) -> dict[str, Any]:
    """Train ``family`` on a ``training_set`` table; the report's ``model_dir`` loads with
    ``gme_data.load_embedder(model_dir)``. ``train_overrides`` update ``config`` (``epochs=2``...)."""
    model = make_trainable(family, base, init_from, **(family_options or {}))
    report = train(model, table, output_dir, config, resume=resume, **train_overrides)
    report["init_from"] = str(init_from) if init_from is not None else None
    return report
