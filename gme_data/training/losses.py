"""InfoNCE over cosine similarity with in-batch and hard negatives (GME: temperature 0.03)."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import torch
import torch.nn.functional as F


def duplicate_mask(pos_keys: Sequence[Hashable], cand_keys: Sequence[Hashable]) -> torch.Tensor:
    """``[B, M]`` bool: True where candidate ``j`` has the same key as query ``i``'s positive but is not
    the positive's own column ``i``. Those columns are other copies of the positive (e.g. two queries
    sharing one answer) and must not count as negatives."""
    b, m = len(pos_keys), len(cand_keys)
    index: dict[Hashable, list[int]] = {}
    for j, k in enumerate(cand_keys):
        index.setdefault(k, []).append(j)
    mask = torch.zeros((b, m), dtype=torch.bool)
    for i, k in enumerate(pos_keys):
        for j in index.get(k, ()):
            if j != i:
                mask[i, j] = True
    return mask


def info_nce(queries: torch.Tensor, candidates: torch.Tensor, temperature: float = 0.03,
             targets: torch.Tensor | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean InfoNCE loss.

    ``queries`` [B, d]; ``candidates`` [M, d] laid out as the B positives (row i is query i's positive)
    followed by any negatives (hard negatives of every query: all count for all queries, as do the
    other queries' positives). Vectors are L2-normalised here, so scores are cosines / temperature.
    ``mask`` [B, M] (True = ignore) removes known duplicates of the positive, see :func:`duplicate_mask`.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    q = F.normalize(queries.float(), dim=-1)
    c = F.normalize(candidates.float(), dim=-1)
    logits = q @ c.T / temperature
    if mask is not None:
        logits = logits.masked_fill(mask.to(logits.device), float("-inf"))
    if targets is None:
        targets = torch.arange(q.shape[0], device=q.device)
    return F.cross_entropy(logits, targets)
