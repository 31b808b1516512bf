"""Small helpers shared by mining and training: table rows -> Items, per-row-instruction encoding."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gme_data.errors import InvalidInputError, InvalidItemError
from gme_data.records import Item
from gme_data.tables import value_or_none


def row_item(row: dict[str, Any], text_col: str, image_col: str, id_value: Any = None,
             where: str = "row") -> Item:
    """An :class:`Item` from two columns of a table row; :class:`InvalidInputError` names the row."""
    text, image = value_or_none(row.get(text_col)), value_or_none(row.get(image_col))
    try:
        return Item(text=text, image=image, id=value_or_none(id_value))
    except InvalidItemError as exc:
        raise InvalidInputError(f"{where}: columns {text_col!r}/{image_col!r}: {exc}") from exc


def list_value(value: Any) -> list:
    """A list from a table cell that may be a list, a numpy array, None or NaN."""
    if value is None:
        return []
    if isinstance(value, float) and math.isnan(value):
        return []
    if isinstance(value, np.ndarray):
        return value.tolist()
    return list(value)


def content_key(text: str | None, image: Any) -> tuple[str | None, str | None]:
    """A cheap identity key (text, image path); see :func:`same_content` for the exact test."""
    return (text, str(image) if image is not None else None)


_BYTES_HASH: dict[str, str] = {}


def _image_sha1(path: str) -> str | None:
    h = _BYTES_HASH.get(path)
    if h is None:
        try:
            h = hashlib.sha1(Path(path).read_bytes()).hexdigest()
        except OSError:
            return None
        if len(_BYTES_HASH) < 200_000:
            _BYTES_HASH[path] = h
    return h


def same_content(a_text: str | None, a_image: Any, b_text: str | None, b_image: Any) -> bool:
    """True when two items have the same text and the same image bytes (the content hash).

    Compares texts first and reads image bytes only when texts match and paths differ.
    """
    if (a_text or None) != (b_text or None):
        return False
    if a_image is None or b_image is None:
        return a_image is None and b_image is None
    if str(a_image) == str(b_image):
        return True
    if isinstance(a_image, (str, Path)) and isinstance(b_image, (str, Path)):
        ha, hb = _image_sha1(str(a_image)), _image_sha1(str(b_image))
        return ha is not None and ha == hb
    return Item(text=a_text, image=a_image).content_hash() == Item(text=b_text, image=b_image).content_hash()


def encode(embedder: Any, items: Sequence[Item], role: str, instruction: str | None = None,
           batch_size: int = 32, show_progress: bool = False) -> np.ndarray:
    """``embedder.encode`` as float32 [n, dim] (empty input -> [0, dim])."""
    if len(items) == 0:
        return np.zeros((0, int(getattr(embedder, "dim", 0))), dtype=np.float32)
    out = embedder.encode(list(items), role=role, instruction=instruction, batch_size=batch_size,
                          show_progress=show_progress)
    out = np.asarray(out, dtype=np.float32)
    if out.ndim != 2 or out.shape[0] != len(items):
        raise InvalidInputError(f"embedder {getattr(embedder, 'name', embedder)!r} returned shape {out.shape} "
                                f"for {len(items)} items")
    return out


def encode_with_instructions(embedder: Any, items: Sequence[Item], role: str,
                             instructions: Sequence[str | None] | str | None = None, batch_size: int = 32,
                             show_progress: bool = False) -> np.ndarray:
    """Encode items whose instructions differ per row: one ``encode`` call per distinct instruction."""
    n = len(items)
    if instructions is None or isinstance(instructions, str):
        return encode(embedder, items, role, instructions, batch_size, show_progress)
    if len(instructions) != n:
        raise InvalidInputError(f"{len(instructions)} instructions for {n} items")
    groups: dict[str | None, list[int]] = {}
    for i, ins in enumerate(instructions):
        groups.setdefault(value_or_none(ins), []).append(i)
    out: np.ndarray | None = None
    for ins, idx in groups.items():
        vecs = encode(embedder, [items[i] for i in idx], role, ins, batch_size, show_progress)
        if out is None:
            out = np.zeros((n, vecs.shape[1]), dtype=np.float32)
        out[idx] = vecs
    assert out is not None
    return out


def topk(queries: np.ndarray, corpus: np.ndarray, k: int, exact_max: int = 50_000,
         chunk: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` inner-product neighbours: (scores [nq, k], indices [nq, k]), best first.

    Exact numpy for corpora up to ``exact_max`` rows; beyond, the retrieval package's faiss
    :class:`~gme_data.retrieval.index.VectorIndex` (exact flat, HNSW past its size threshold).
    """
    nq, nc = queries.shape[0], corpus.shape[0]
    k = min(k, nc)
    if nq == 0 or k == 0:
        return np.zeros((nq, k), np.float32), np.zeros((nq, k), np.int64)
    if nc > exact_max:
        from gme_data.retrieval.index import VectorIndex

        index = VectorIndex(int(corpus.shape[1]))
        index.add([str(i) for i in range(nc)], corpus)
        hits = index.search(queries, k)
        scores = np.full((nq, k), -np.inf, np.float32)
        idx = np.zeros((nq, k), np.int64)
        for r, row in enumerate(hits):
            scores[r, : len(row)] = [h.score for h in row]
            idx[r, : len(row)] = [int(h.id) for h in row]
            if len(row) < k:  # HNSW can return fewer: pad with the last hit, dropped as duplicates later
                idx[r, len(row):] = idx[r, max(0, len(row) - 1)]
        return scores, idx
    scores_out = np.empty((nq, k), np.float32)
    idx_out = np.empty((nq, k), np.int64)
    for s in range(0, nq, chunk):
        sims = queries[s:s + chunk] @ corpus.T
        if k < nc:
            part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        else:
            part = np.tile(np.arange(nc), (sims.shape[0], 1))
        part_scores = np.take_along_axis(sims, part, axis=1)
        order = np.argsort(-part_scores, axis=1, kind="stable")
        idx_out[s:s + chunk] = np.take_along_axis(part, order, axis=1)
        scores_out[s:s + chunk] = np.take_along_axis(part_scores, order, axis=1)
    return scores_out, idx_out
