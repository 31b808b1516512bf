"""One MiniLM text encoder per process, each text embedded once per model.

:func:`shared_text_encoder` returns the process's single :class:`SharedTextEncoder` for a backend
(``"onnx"``: the bundled int8 ONNX all-MiniLM-L6-v2, the default; ``"torch"``: sentence-transformers).
The domain classifier, the consistency filter and dedup, and the offline embedder's text path (image
pool, fused queries, mining, evaluation) all encode through it, so a paragraph or query text is
embedded once per model: first from an in-process memo, then from the content-addressed
:class:`~gme_data.retrieval.vector_cache.VectorCache` under ``<GME_DATA_HOME>/cache/embeddings``
(shared by processes and runs), and only then by the model, in length-sorted batches (less padding).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from gme_data.errors import InvalidInputError
from gme_data.retrieval.vector_cache import VectorCache

#: texts per ONNX batch: 8 was fastest on the 2-core machine (8.5 ms/text at 1 thread; 32: 14.5, 128: 19.9;
#: benchmarks/synthesis_scale_notes.md)
DEFAULT_BATCH_SIZE = 8
MEMO_LIMIT = 100_000
#: process-wide count of texts served from an encoder's in-process memo (content embedded or loaded
#: earlier in this process: e.g. the consistency filter reusing the classifier's paragraph vectors when
#: stages run in one process); the vector cache counts its own hits and misses
MEMO_COUNTS = {"hits": 0}


@lru_cache(maxsize=8)
def _vector_cache(root: str) -> VectorCache:
    return VectorCache(root)


def text_vector_cache() -> VectorCache:
    """The vector cache of the current GME_DATA_HOME (one instance per folder and process)."""
    from gme_data import settings

    return _vector_cache(str(settings.cache_dir() / "embeddings"))


class SharedTextEncoder:
    """all-MiniLM-L6-v2 text vectors (L2-normalised float32 ``[n, 384]``), memoised and disk-cached."""

    dim = 384

    def __init__(self, backend: str = "onnx", batch_size: int = DEFAULT_BATCH_SIZE, pooling: str = "mean"):
        from gme_data.retrieval.offline import MiniLMText

        if backend not in ("onnx", "torch"):
            raise InvalidInputError(f"text encoder backend must be 'onnx' or 'torch', got {backend!r}")
        self.model = MiniLMText(backend, pooling=pooling)  # checks the pooling (last: ONNX only)
        self.backend, self.pooling = backend, pooling
        pooled = "" if pooling == "mean" else f"|pooling={pooling}"  # mean: the keys vectors already have
        self.model_id = (f"all-MiniLM-L6-v2|{'onnx-int8' if backend == 'onnx' else 'torch-fp32'}|max_tokens=256"
                         f"{pooled}")
        self.batch_size = batch_size
        self.encoded = 0  # texts the model embedded in this process
        self._memo: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def _key(self, text: str) -> str:
        return hashlib.sha1(f"{self.model_id}\x1f{text}".encode()).hexdigest()

    def encode(self, texts: Sequence[str], batch_size: int | None = None, cache: VectorCache | None = None
               ) -> np.ndarray:
        """Vectors of ``texts`` in order; ``cache`` defaults to :func:`text_vector_cache`."""
        texts = [str(t) for t in texts]
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        keys = [self._key(t) for t in texts]
        with self._lock:
            todo = {k: t for k, t in zip(keys, texts, strict=True) if k not in self._memo}
            MEMO_COUNTS["hits"] += len(set(keys)) - len(todo)
            if todo:
                store = cache if cache is not None else text_vector_cache()
                found = store.get_many(list(todo), self.dim)
                missing = [(k, t) for k, t in todo.items() if k not in found]
                if missing:
                    missing.sort(key=lambda kt: len(kt[1]))  # similar lengths share a batch: less padding
                    vecs = self.model.encode([t for _, t in missing], batch_size=batch_size or self.batch_size)
                    self.encoded += len(missing)
                    store.put_many([k for k, _ in missing], vecs)
                    found.update(zip([k for k, _ in missing], vecs, strict=True))
                out = np.stack([found[k] if k in found else self._memo[k] for k in keys])
                if len(self._memo) + len(found) > MEMO_LIMIT:
                    self._memo.clear()
                self._memo.update(found)
            else:
                out = np.stack([self._memo[k] for k in keys])
        return out.astype(np.float32, copy=False)


_ENCODERS: dict[tuple[str, str], SharedTextEncoder] = {}
_REGISTRY_LOCK = threading.Lock()


def shared_text_encoder(backend: str = "onnx", pooling: str = "mean") -> SharedTextEncoder:
    """The process's one :class:`SharedTextEncoder` for ``backend`` and ``pooling``."""
    with _REGISTRY_LOCK:
        if (backend, pooling) not in _ENCODERS:
            _ENCODERS[backend, pooling] = SharedTextEncoder(backend, pooling=pooling)
        return _ENCODERS[backend, pooling]


def is_default_minilm(model: str | None) -> bool:
    """True for None/'' and for the bundled all-MiniLM-L6-v2 (by name or by its folder)."""
    if not model or model in ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        return True
    try:
        from gme_data.retrieval.offline import minilm_path

        return Path(model).resolve() == minilm_path().resolve()
    except (InvalidInputError, OSError):
        return False
