"""gme_data: a data-synthesis workbench for GME-style universal multimodal retrieval."""

from __future__ import annotations

import os
from typing import Any

# torch's OpenMP threads sleep while they wait instead of spinning (read once, when torch loads):
# spinning threads lose a shared core to each other (gme_data/retrieval/cpu_threads.py)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from gme_data.errors import GmeDataError, InvalidInputError, InvalidItemError, SourceError
from gme_data.records import COMBINATIONS, Item, Sample

__all__ = ["COMBINATIONS", "GmeDataError", "InvalidInputError", "InvalidItemError", "Item", "Sample",
           "SourceError", "load_embedder"]
__version__ = "0.1.0"


def load_embedder(name_or_path: str | None = None, device: str | None = None, dtype: Any = None,
                  **options: Any):
    """Load an embedder (see :mod:`gme_data.retrieval`); no argument gives the offline default."""
    from gme_data.retrieval import load_embedder as _load

    return _load(name_or_path, device=device, dtype=dtype, **options)
