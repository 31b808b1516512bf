"""Embedders behind one protocol, GME instructions and a vector index.

``load_embedder(name_or_path=None, device=None, dtype=None, **options)``:

- ``None`` / ``"offline"`` -> :class:`~gme_data.retrieval.offline.OfflineEmbedder` (CPU, bundled weights;
  options: ``alpha``, ``text_backend``, ``temperature``, ``top_k``, ``ocr``, ``ocr_min_chars``,
  ``ocr_weight``, ``cache_dir``, ``prompt_cache_dir``).
- ``"gme-2b"``, ``"gme-7b"``, a Qwen2-VL hub id or local folder ->
  :class:`~gme_data.retrieval.gme_qwen2vl.GmeQwen2VL` (options: ``position_mode`` "reference"|"mrope",
  ``min_image_tokens``, ``max_image_tokens``, ``max_length``, ``attn_implementation``, ``cache_dir``
  (embedding cache), ``hf_cache_dir`` and other transformers ``from_pretrained`` kwargs).

Every embedder has ``encode(items, role="query"|"candidate", instruction=None, batch_size=None,
show_progress=False) -> float32 [n, dim]`` (L2-normalised) and ``dim``, ``name``, ``modalities``.
"""

from __future__ import annotations

from typing import Any

from gme_data.retrieval.base import Embedder, EmbeddingCache, as_items
from gme_data.retrieval.instructions import (
    CANDIDATE_INSTRUCTION,
    DATASETS,
    DEFAULT_INSTRUCTIONS,
    INSTRUCTIONS,
    default_instruction,
    get_instruction,
)

OFFLINE_NAMES = (None, "offline", "offline-default", "offline-minilm-mobilenetv2")

__all__ = ["CANDIDATE_INSTRUCTION", "DATASETS", "DEFAULT_INSTRUCTIONS", "INSTRUCTIONS", "Embedder",
           "EmbeddingCache", "as_items", "default_instruction", "get_instruction", "load_embedder"]


def load_embedder(name_or_path: str | None = None, device: str | None = None, dtype: Any = None,
                  **options: Any) -> Embedder:
    """Load an embedder by name or path; no argument gives the offline default (see module docstring).

    A folder written by :mod:`gme_data.training` (a ``manifest.json`` of kind ``adapter`` or
    ``gme-lora``) loads as the trained model it holds.

    A GME checkpoint takes ``runtime_profile=`` (``gme_data``, ``reference``, ``reference-mteb``; see
    :mod:`gme_data.retrieval.gme_profiles`): the profile's dtype, image budget, truncation and
    pre-resize, with ``min_image_tokens=`` still selectable (CLI: ``--model-option runtime_profile=reference``).
    """
    from gme_data.training.loading import is_trained_model_dir, load_trained_embedder

    if is_trained_model_dir(name_or_path):
        return load_trained_embedder(str(name_or_path), device=device, dtype=dtype, **options)
    if name_or_path in OFFLINE_NAMES:
        from gme_data.retrieval.offline import OfflineEmbedder

        if dtype not in (None, "fp32", "float32"):
            from gme_data.errors import InvalidInputError

            raise InvalidInputError(f"the offline default embedder runs in float32, got dtype={dtype!r}")
        return OfflineEmbedder(device=device, **options)
    from gme_data.retrieval.clip_family import clip_family_of

    family = options.pop("family", None) or clip_family_of(name_or_path)
    if family is not None:
        from gme_data.retrieval.clip_family import ClipFamilyEmbedder

        return ClipFamilyEmbedder.from_pretrained(str(name_or_path), device=device, dtype=dtype, family=family,
                                                  **options)
    if "runtime_profile" in options:
        from gme_data.retrieval.gme_profiles import load_gme

        if dtype is not None:
            from gme_data.errors import InvalidInputError

            raise InvalidInputError(f"dtype={dtype!r} conflicts with runtime_profile (the profile sets the dtype)")
        profile = options.pop("runtime_profile")
        return load_gme(str(name_or_path), profile, min_image_tokens=options.pop("min_image_tokens", None),
                        device=device, **options)
    from gme_data.retrieval.gme_qwen2vl import GmeQwen2VL

    return GmeQwen2VL.from_pretrained(str(name_or_path), device=device, dtype=dtype, **options)
