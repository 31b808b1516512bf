"""Hard-negative mining: top-N retrieval minus positives and likely false negatives, keep K."""

from __future__ import annotations

from gme_data.mining.hard_negatives import (
    MiningConfig,
    MiningResult,
    mine_hard_negatives,
    pool_from_samples,
)

__all__ = ["MiningConfig", "MiningResult", "mine_hard_negatives", "pool_from_samples"]
