"""A faiss vector index with string ids: exact below a size threshold, HNSW above.

Vectors are searched by inner product (cosine for the L2-normalised output of the embedders).
The index starts exact (``IndexFlatIP``); once it holds ``hnsw_threshold`` vectors (default 100k)
it is rebuilt as ``IndexHNSWFlat`` (``hnsw_m``, ``ef_construction``, ``ef_search``). String ids are
kept in insertion order; ``save(dir)`` writes ``index.faiss``, ``ids.json`` and ``manifest.json``
(dim, metric, model name, kind, count), ``VectorIndex.load(dir)`` reads them back.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gme_data.errors import GmeDataError, InvalidInputError

FORMAT = "gme_data.vector_index/1"


class DimensionMismatchError(InvalidInputError):
    """Vectors whose width differs from the index's dimension."""


class DuplicateIdError(InvalidInputError):
    """An id that is already in the index (or repeated within one add)."""


class IndexFormatError(GmeDataError):
    """A saved index folder that is incomplete or inconsistent."""


@dataclass
class SearchHit:
    id: str
    score: float


class VectorIndex:
    """Inner-product index over ``dim``-d float32 vectors with string ids."""

    def __init__(self, dim: int, model_name: str | None = None, hnsw_threshold: int = 100_000,
                 hnsw_m: int = 32, ef_construction: int = 64, ef_search: int = 64):
        if not isinstance(dim, int) or dim < 1:
            raise InvalidInputError(f"dim must be a positive int, got {dim!r}")
        self.dim, self.model_name = dim, model_name
        self.hnsw_threshold, self.hnsw_m = hnsw_threshold, hnsw_m
        self.ef_construction, self.ef_search = ef_construction, ef_search
        self.ids: list[str] = []
        self._id_set: set[str] = set()
        self._index = self._new_flat()

    # ------------------------------------------------------------------ construction
    def _new_flat(self):
        import faiss

        return faiss.IndexFlatIP(self.dim)

    def _new_hnsw(self):
        import faiss

        index = faiss.IndexHNSWFlat(self.dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = self.ef_construction
        index.hnsw.efSearch = self.ef_search
        return index

    @property
    def kind(self) -> str:
        """``"flat"`` (exact) or ``"hnsw"``."""
        return "hnsw" if "HNSW" in type(self._index).__name__ else "flat"

    def __len__(self) -> int:
        return len(self.ids)

    def _check(self, vectors: np.ndarray, what: str) -> np.ndarray:
        arr = np.asarray(vectors, dtype=np.float32)
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2:
            raise InvalidInputError(f"{what}: expected a [n, {self.dim}] array, got shape {arr.shape}")
        if arr.shape[1] != self.dim:
            raise DimensionMismatchError(
                f"{what}: vectors have dim {arr.shape[1]}, index{f' ({self.model_name})' if self.model_name else ''} "
                f"has dim {self.dim}"
            )
        if not np.isfinite(arr).all():
            raise InvalidInputError(f"{what}: vectors contain NaN or inf")
        return np.ascontiguousarray(arr)

    def add(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        """Append vectors under string ids (unique across the index); switches to HNSW past the threshold."""
        arr = self._check(vectors, "add")
        ids = [str(i) for i in ids]
        if len(ids) != arr.shape[0]:
            raise InvalidInputError(f"add: {len(ids)} ids for {arr.shape[0]} vectors")
        dup = [i for i in ids if i in self._id_set]
        if dup or len(set(ids)) != len(ids):
            seen = dup or [i for i in ids if ids.count(i) > 1]
            raise DuplicateIdError(f"add: duplicate ids {seen[:5]}")
        if self.kind == "flat" and len(self.ids) + len(ids) >= self.hnsw_threshold:
            self._to_hnsw()
        self._index.add(arr)
        self.ids.extend(ids)
        self._id_set.update(ids)

    def _to_hnsw(self) -> None:
        old = self._index
        stored = old.reconstruct_n(0, old.ntotal) if old.ntotal else np.zeros((0, self.dim), np.float32)
        self._index = self._new_hnsw()
        if len(stored):
            self._index.add(stored)

    def search(self, queries: np.ndarray, k: int = 10) -> list[list[SearchHit]]:
        """Top-``k`` hits per query (best first); fewer when the index holds fewer than ``k`` vectors."""
        arr = self._check(queries, "search")
        if k < 1:
            raise InvalidInputError(f"search: k must be >= 1, got {k}")
        if not self.ids:
            return [[] for _ in range(arr.shape[0])]
        scores, idx = self._index.search(arr, min(k, len(self.ids)))
        return [[SearchHit(self.ids[j], float(s)) for s, j in zip(srow, irow, strict=True) if j >= 0]
                for srow, irow in zip(scores, idx, strict=True)]

    def search_arrays(self, queries: np.ndarray, k: int = 10) -> tuple[np.ndarray, list[list[str]]]:
        """Like :meth:`search` but returns ``(scores [n, k'], ids)``."""
        hits = self.search(queries, k)
        width = min(k, len(self.ids))
        scores = np.full((len(hits), width), -np.inf, dtype=np.float32)
        for r, row in enumerate(hits):
            scores[r, : len(row)] = [h.score for h in row]
        return scores, [[h.id for h in row] for row in hits]

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> Path:
        """Write ``index.faiss``, ``ids.json`` and ``manifest.json`` to ``directory`` (atomically per file)."""
        import faiss

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        manifest = {"format": FORMAT, "dim": self.dim, "metric": "inner_product", "model_name": self.model_name,
                    "kind": self.kind, "count": len(self.ids), "hnsw_threshold": self.hnsw_threshold,
                    "hnsw_m": self.hnsw_m, "ef_construction": self.ef_construction, "ef_search": self.ef_search}
        faiss.write_index(self._index, str(d / "index.faiss.tmp"))
        os.replace(d / "index.faiss.tmp", d / "index.faiss")
        for name, obj in (("ids.json", self.ids), ("manifest.json", manifest)):
            tmp = d / f"{name}.tmp"
            tmp.write_text(json.dumps(obj, indent=1 if name == "manifest.json" else None))
            os.replace(tmp, d / name)
        return d

    @classmethod
    def load(cls, directory: str | Path, expected_dim: int | None = None) -> VectorIndex:
        """Read an index saved by :meth:`save`; ``expected_dim`` guards against a different model's index."""
        import faiss

        d = Path(directory)
        for name in ("index.faiss", "ids.json", "manifest.json"):
            if not (d / name).is_file():
                raise IndexFormatError(f"index folder {d}: missing {name}")
        manifest = json.loads((d / "manifest.json").read_text())
        if manifest.get("format") != FORMAT:
            raise IndexFormatError(f"index folder {d}: unknown format {manifest.get('format')!r}")
        if expected_dim is not None and manifest["dim"] != expected_dim:
            raise DimensionMismatchError(f"index folder {d}: dim {manifest['dim']} but expected {expected_dim}")
        out = cls(manifest["dim"], manifest.get("model_name"), manifest["hnsw_threshold"], manifest["hnsw_m"],
                  manifest["ef_construction"], manifest["ef_search"])
        out._index = faiss.read_index(str(d / "index.faiss"))
        if out.kind == "hnsw":
            out._index.hnsw.efSearch = out.ef_search
        out.ids = [str(i) for i in json.loads((d / "ids.json").read_text())]
        out._id_set = set(out.ids)
        if out._index.d != out.dim or out._index.ntotal != len(out.ids):
            raise IndexFormatError(f"index folder {d}: index has {out._index.ntotal} x {out._index.d}, "
                                   f"manifest/ids say {len(out.ids)} x {out.dim}")
        return out
