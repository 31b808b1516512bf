"""Duplicate detection: exact text (normalised hash) and near-duplicate images (perceptual hash)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gme_data.candidates.normalise import text_key
from gme_data.images import UnreadableImageError, image_phash


@dataclass
class Duplicate:
    """Row ``index`` duplicates the earlier row ``of_index``; ``distance`` is the hash distance."""

    index: int
    of_index: int
    distance: int


def exact_text_duplicates(texts: Sequence[str | None]) -> list[Duplicate]:
    """Rows whose normalised text equals an earlier row's (the first occurrence is kept)."""
    first: dict[str, int] = {}
    dups = []
    for i, text in enumerate(texts):
        if text is None:
            continue
        key = text_key(text)
        if key in first:
            dups.append(Duplicate(i, first[key], 0))
        else:
            first[key] = i
    return dups


def phash_int(path: str, hash_size: int = 8) -> int:
    """The image's perceptual hash (DCT pHash, ``hash_size**2`` bits) as an integer."""
    bits = image_phash(path, hash_size).hash.flatten()   # cached by content: decoded once across stages
    return int("".join("1" if b else "0" for b in bits), 2)


def near_duplicate_images(paths: Sequence[str | None], max_distance: int,
                          hash_size: int = 8) -> tuple[list[Duplicate], list[int]]:
    """Rows whose image is within ``max_distance`` bits (Hamming) of an earlier kept row's image.

    Returns the duplicates and the indices whose image could not be read.
    """
    if hash_size > 8:
        raise ValueError("near_duplicate_images: hash_size <= 8 (hashes are compared as 64-bit integers)")
    kept_hashes = np.zeros(max(1, sum(p is not None for p in paths)), dtype=np.uint64)  # filled in order
    n_kept = 0
    kept_rows: list[int] = []
    dups, unreadable = [], []
    for i, path in enumerate(paths):
        if path is None:
            continue
        try:
            h = phash_int(path, hash_size)
        except (UnreadableImageError, OSError):
            unreadable.append(i)
            continue
        if n_kept:
            dist = np.bitwise_count(kept_hashes[:n_kept] ^ np.uint64(h))
            j = int(dist.argmin())
            if int(dist[j]) <= max_distance:
                dups.append(Duplicate(i, kept_rows[j], int(dist[j])))
                continue
        kept_hashes[n_kept] = h
        n_kept += 1
        kept_rows.append(i)
    return dups, unreadable
