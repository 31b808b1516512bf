"""Duplicate detection for samples: exact (query, positive) pairs and near-duplicate queries.

Near duplicates are judged part by part: query texts by embedding cosine, query images by a 64-bit
perceptual hash (pHash, Hamming distance). A part absent on both sides is equal; absent on one side
only, different. Two queries for the same positive are near duplicates when every part is equal.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import imagehash
import numpy as np

from gme_data.images import UnreadableImageError, image_phash
from gme_data.pool.sources import file_sha1

_WS = re.compile(r"\s+")
_PHASH: dict[str, imagehash.ImageHash | None] = {}


def normalize_text(text: str | None) -> str | None:
    """Case-folded, whitespace-collapsed text (the key of exact duplicates)."""
    if text is None:
        return None
    return _WS.sub(" ", str(text)).strip().casefold() or None


def image_key(path: str | None) -> str | None:
    """The content hash of an image file (so copies at other paths are equal), else the path."""
    if path is None:
        return None
    try:
        return file_sha1(path)
    except OSError:
        return str(path)


def phash(path: str | None) -> imagehash.ImageHash | None:
    """64-bit pHash of an image file (cached per path); None when absent or unreadable."""
    if path is None:
        return None
    key = str(Path(path))
    if key not in _PHASH:
        try:
            _PHASH[key] = image_phash(key)   # cached by content: decoded once across stages
        except (UnreadableImageError, OSError):
            _PHASH[key] = None
    return _PHASH[key]


def phash_distance(a: str | None, b: str | None) -> int | None:
    ha, hb = phash(a), phash(b)
    if ha is None or hb is None:
        return None
    return int(ha - hb)


@dataclass
class DupDecision:
    """A sample judged a duplicate of ``duplicate_of``."""

    index: int
    reason: str  # "duplicate_pair" | "near_duplicate"
    duplicate_of: int
    score: float
    text_cos: float | None = None
    phash_distance: int | None = None


def find_duplicates(query_texts: Sequence[str | None], query_images: Sequence[str | None],
                    positive_keys: Sequence[Any], text_vectors: np.ndarray | None,
                    text_threshold: float = 0.95, phash_max_distance: int = 4) -> list[DupDecision]:
    """Duplicates among samples given in priority order (earlier ones are kept).

    ``text_vectors[i]`` is the L2-normalised embedding of ``query_texts[i]`` (rows of text-less
    queries are ignored). Exact duplicates (same normalised text, same image content, same positive)
    come first; then, per positive, near duplicates of an already kept sample.
    """
    n = len(query_texts)
    decisions: list[DupDecision] = []
    dropped: set[int] = set()
    seen: dict[tuple, int] = {}
    for i in range(n):
        key = (normalize_text(query_texts[i]), image_key(query_images[i]), positive_keys[i])
        if key in seen:
            decisions.append(DupDecision(i, "duplicate_pair", seen[key], 1.0))
            dropped.add(i)
        else:
            seen[key] = i
    groups: dict[Any, list[int]] = {}
    for i in range(n):
        if i not in dropped:
            groups.setdefault(positive_keys[i], []).append(i)
    for members in groups.values():
        kept: list[int] = []
        for i in members:
            for j in kept:
                text_cos: float | None = None
                if query_texts[i] is None and query_texts[j] is None:
                    text_ok = True
                elif query_texts[i] is None or query_texts[j] is None or text_vectors is None:
                    text_ok = False
                else:
                    text_cos = float(np.dot(text_vectors[i], text_vectors[j]))
                    text_ok = text_cos >= text_threshold
                if not text_ok:
                    continue
                dist: int | None = None
                if query_images[i] is None and query_images[j] is None:
                    image_ok = True
                elif query_images[i] is None or query_images[j] is None:
                    image_ok = False
                else:
                    dist = phash_distance(query_images[i], query_images[j])
                    image_ok = dist is not None and dist <= phash_max_distance
                if image_ok:
                    score = text_cos if text_cos is not None else 1.0 - (dist or 0) / 64.0
                    decisions.append(DupDecision(i, "near_duplicate", j, score, text_cos, dist))
                    break
            else:
                kept.append(i)
    return sorted(decisions, key=lambda d: d.index)
