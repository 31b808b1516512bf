"""Load any model folder written by the trainers (dispatch on ``manifest.json``'s ``kind``).

Hook for ``gme_data.load_embedder``: when ``name_or_path`` is a folder for which
:func:`is_trained_model_dir` is true, return :func:`load_trained_embedder(path, device=..., dtype=..., **options)`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gme_data.errors import InvalidInputError
from gme_data.training.manifest import KINDS, MAX_MANIFEST_BYTES


def is_trained_model_dir(path: str | Path | None) -> bool:
    """True when ``path`` is a folder with a trainer manifest (``kind`` adapter or gme-lora)."""
    if path is None:
        return False
    m = Path(path) / "manifest.json"
    if not m.is_file():
        return False
    try:
        return m.stat().st_size <= MAX_MANIFEST_BYTES and json.loads(m.read_text()).get("kind") in KINDS
    except (json.JSONDecodeError, OSError, AttributeError, UnicodeDecodeError, RecursionError):
        return False


def load_trained_embedder(path: str | Path, device: Any = None, dtype: Any = None, **options: Any) -> Any:
    """A trained model folder -> an embedder (``encode``, ``dim``, ``name``, ``modalities``)."""
    from gme_data.training.adapter import load_adapter_embedder
    from gme_data.training.manifest import read_manifest

    kind = read_manifest(path).get("kind")
    if kind == "adapter":
        if dtype not in (None, "fp32", "float32"):
            raise InvalidInputError(f"{path}: adapter models run in float32, got dtype={dtype!r}")
        return load_adapter_embedder(path, device=device, **options)
    if kind == "gme-lora":
        from gme_data.training.gme_lora import load_gme_lora_embedder

        return load_gme_lora_embedder(path, device=device, dtype=dtype, **options)
    raise InvalidInputError(f"{path}: unknown model kind {kind!r} (expected one of {KINDS})")
