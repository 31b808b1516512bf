"""A small real text embedder for fast training tests: hashed character trigrams, 32 dimensions."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from gme_data.retrieval.base import Embedder

WORDS = ["apple", "river", "mountain", "violin", "candle", "harbor", "glacier", "lantern",
         "meadow", "pepper", "saddle", "tunnel"]


class HashedTrigramEmbedder(Embedder):
    """Counts of hashed character trigrams (deterministic, CPU, no weights)."""

    name = "hashed-trigrams"
    dim = 32
    modalities = ("text",)

    def __init__(self) -> None:
        super().__init__(None)

    def _embed_batch(self, items, role, instruction):
        out = np.zeros((len(items), self.dim), np.float32)
        for i, it in enumerate(items):
            t = f"  {it.text.lower()} "
            for j in range(len(t) - 2):
                out[i, int(hashlib.md5(t[j:j + 3].encode()).hexdigest()[:8], 16) % self.dim] += 1.0
        return out


def definition_table() -> pd.DataFrame:
    """T->T rows (question -> definition) for :data:`WORDS`, the last three as validation."""
    rows = [dict(id=f"q-{w}", combination="T->T", instruction="Find the definition.",
                 query_text=f"what is a {w}?", query_image=None, pos_id=f"def-{w}",
                 pos_text=f"A {w} is a thing called {w}.", pos_image=None,
                 split="validation" if i >= len(WORDS) - 3 else "train")
            for i, w in enumerate(WORDS)]
    return pd.DataFrame(rows)
