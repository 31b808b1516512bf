"""Domain balancing: cap how many candidates each domain keeps."""

from __future__ import annotations

import math
from collections.abc import Sequence


def domain_cap(counts: dict[str, int], max_per_domain: int | None, ratio_to_smallest: float | None) -> int | None:
    """The per-domain cap: ``max_per_domain`` and/or ``ratio_to_smallest`` x the smallest domain's count."""
    caps = []
    if max_per_domain is not None:
        caps.append(max_per_domain)
    present = [n for n in counts.values() if n > 0]
    if ratio_to_smallest is not None and present:
        caps.append(math.ceil(ratio_to_smallest * min(present)))
    return min(caps) if caps else None


def over_cap(domains: Sequence[str], confidences: Sequence[float], ids: Sequence[str], cap: int | None) -> set[int]:
    """Indices beyond ``cap`` in their domain; each domain keeps its most confident rows (ties: by id)."""
    if cap is None:
        return set()
    by_domain: dict[str, list[int]] = {}
    for i, d in enumerate(domains):
        by_domain.setdefault(d, []).append(i)
    dropped: set[int] = set()
    for rows in by_domain.values():
        ranked = sorted(rows, key=lambda i: (-confidences[i], ids[i]))
        dropped.update(ranked[cap:])
    return dropped
