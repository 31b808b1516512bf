"""The embedder protocol shared by every backend, input coercion and an on-disk embedding cache.

An embedder turns items (text, image or fused) into L2-normalised float32 vectors:
``encode(items, role="query"|"candidate", instruction=None, batch_size=..., show_progress=...)``.
Items may be :class:`gme_data.Item` objects, plain strings (text items) or PIL images (image items).
Queries carry a task instruction; candidates (and queries without one) get
:data:`~gme_data.retrieval.instructions.CANDIDATE_INSTRUCTION`.

:class:`EmbeddingCache` keys vectors by (model name + weights hash + settings, role, instruction, item
content hash)
in one SQLite file, so re-embedding the same corpus with the same settings is free.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from gme_data.errors import InvalidInputError, InvalidItemError
from gme_data.records import Item, Modality
from gme_data.retrieval.instructions import CANDIDATE_INSTRUCTION
from gme_data.retrieval.vector_cache import VectorCache

ROLES = ("query", "candidate")
ItemLike = Item | str | Image.Image


def as_items(items: Iterable[ItemLike] | ItemLike) -> list[Item]:
    """Coerce Items / strings / PIL images (or one of them) to a list of :class:`Item`."""
    if isinstance(items, (Item, str, Image.Image)):
        items = [items]
    out: list[Item] = []
    for i, x in enumerate(items):
        if isinstance(x, Item):
            out.append(x)
        elif isinstance(x, str):
            if not x.strip():
                raise InvalidItemError(f"item #{i}: empty text")
            out.append(Item(text=x, id=f"#{i}"))
        elif isinstance(x, Image.Image):
            out.append(Item(image=x, id=f"#{i}"))
        else:
            raise InvalidItemError(
                f"item #{i}: expected gme_data.Item, str or PIL.Image, got {type(x).__name__}"
            )
    return out


def resolve_instruction(role: str, instruction: str | None) -> str:
    """GME's rule: queries use their task instruction; candidates and bare queries the default prompt."""
    if role not in ROLES:
        raise InvalidInputError(f"role must be 'query' or 'candidate', got {role!r}")
    if instruction is not None and not isinstance(instruction, str):
        raise InvalidInputError(f"instruction must be str or None, got {type(instruction).__name__}")
    if role == "candidate" or instruction is None or not instruction.strip():
        return CANDIDATE_INSTRUCTION
    return instruction


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Row-wise L2 normalisation in float32 (zero rows stay zero)."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


class EmbeddingCache(VectorCache):
    """Vectors keyed by (model key, role, instruction, item content hash) in ``<root>/embeddings.sqlite``
    (a :class:`~gme_data.retrieval.vector_cache.VectorCache`: shared by processes, LRU-bounded)."""

    def __init__(self, root: str | Path, max_bytes: int | None = None):
        super().__init__(root, "embeddings.sqlite", max_bytes)

    @staticmethod
    def key(model_key: str, role: str, instruction: str, content_hash: str) -> str:
        h = hashlib.sha1()
        for part in (model_key, role, instruction, content_hash):
            h.update(part.encode())
            h.update(b"\x1f")
        return h.hexdigest()


class Embedder:
    """Base class: batching, progress, caching and checks; backends implement :meth:`_embed_batch`.

    Subclasses set ``name`` (model name), ``dim``, ``modalities`` (subset of text/image/fused) and
    ``settings`` (everything that changes vectors; part of the cache key).
    """

    name: str
    dim: int
    modalities: tuple[Modality, ...]
    default_batch_size: int = 8

    def __init__(self, cache_dir: str | Path | None = None):
        self.cache = EmbeddingCache(cache_dir) if cache_dir is not None else None

    @property
    def settings(self) -> dict[str, Any]:
        return {}

    #: A content hash of the weights when they come from a local folder (whose name is only its
    #: path): part of the cache key, so retrained weights in the same folder never reuse old vectors.
    weights_id: str | None = None

    @property
    def cache_key(self) -> str:
        """Model name, the weights' content hash (when known) and every setting that changes vectors."""
        parts = [self.name] + ([f"weights={self.weights_id}"] if self.weights_id else [])
        parts += [f"{k}={v}" for k, v in sorted(self.settings.items())]
        return "|".join(parts)

    def _embed_batch(self, items: list[Item], role: str, instruction: str) -> np.ndarray:
        raise NotImplementedError

    def _embed_stream(self, items: list[Item], role: str, instruction: str,
                      batch_size: int) -> Iterator[tuple[list[int], np.ndarray]]:
        """Yield ``(positions in items, raw vectors)`` batch by batch; backends may plan their own batches."""
        for start in range(0, len(items), batch_size):
            chunk = items[start:start + batch_size]
            yield list(range(start, start + len(chunk))), self._embed_batch(chunk, role, instruction)

    def _cost(self, item: Item) -> float:
        """Rough per-item cost; items are batched in cost order to limit padding (results don't change)."""
        return 0.0

    def encode(self, items: Iterable[ItemLike] | ItemLike, role: str = "query", instruction: str | None = None,
               batch_size: int | None = None, show_progress: bool = False) -> np.ndarray:
        """Embed ``items`` -> float32 ``[n, dim]``, L2-normalised, in input order."""
        instr = resolve_instruction(role, instruction)
        batch = batch_size or self.default_batch_size
        if not isinstance(batch, int) or batch < 1:
            raise InvalidInputError(f"batch_size must be a positive int, got {batch_size!r}")
        items = as_items(items)
        for it in items:
            if it.modality not in self.modalities:
                raise InvalidItemError(
                    f"item {it.id or '<unnamed item>'}: {it.modality} items are not supported by {self.name} "
                    f"(supports {', '.join(self.modalities)})"
                )
        out = np.zeros((len(items), self.dim), dtype=np.float32)
        todo = list(range(len(items)))
        keys: list[str] = []
        if self.cache is not None and items:
            keys = [EmbeddingCache.key(self.cache_key, role, instr, it.content_hash()) for it in items]
            hits = self.cache.get_many(keys, self.dim)
            todo = [i for i, k in enumerate(keys) if k not in hits]
            for i, k in enumerate(keys):
                if k in hits:
                    out[i] = hits[k]
        todo.sort(key=lambda i: self._cost(items[i]))
        bar = tqdm(total=len(todo), desc=f"embed {role}s ({self.name})", unit="item",
                   disable=not show_progress or not todo)
        for pos, raw in self._embed_stream([items[i] for i in todo], role, instr, batch):
            idx = [todo[p] for p in pos]
            vecs = l2_normalize(raw)
            if vecs.shape != (len(idx), self.dim):
                raise RuntimeError(f"{self.name}: backend returned {vecs.shape}, expected {(len(idx), self.dim)}")
            out[idx] = vecs
            if self.cache is not None:
                self.cache.put_many([keys[i] for i in idx], vecs)
            bar.update(len(idx))
        bar.close()
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim}, modalities={self.modalities})"
