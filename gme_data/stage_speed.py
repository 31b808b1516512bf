"""Throughput of one synthesis stage for its asset metadata: items/s and the vector cache's hits/misses.

``clock = StageClock()`` at the start of an asset's work; ``clock.metadata(n_items)`` before
``finish_stage`` gives ``items_per_s`` (rows out per second of the stage's own work, before its gate
and report), ``stage_work_s``, the vector-cache hits/misses, the texts served from the MiniLM
encoder's in-process memo (``vector_memo_hits``: stages run in one process share it), and the images
OCR read or the pixel test skipped.
"""

from __future__ import annotations

import time

from gme_data.retrieval.ocr_gate import OCR_COUNTS
from gme_data.retrieval.text_encoders import MEMO_COUNTS
from gme_data.retrieval.vector_cache import VectorCache


def _counters() -> dict[str, int]:
    return {"vector_cache_hits": VectorCache.total_hits, "vector_cache_misses": VectorCache.total_misses,
            "vector_memo_hits": MEMO_COUNTS["hits"],
            "ocr_runs": OCR_COUNTS["runs"], "ocr_skipped_by_gate": OCR_COUNTS["skipped"]}


class StageClock:
    """Wall time and process-wide counters since construction."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.before = _counters()

    def metadata(self, n_items: int) -> dict[str, float | int]:
        seconds = max(time.perf_counter() - self.started, 1e-9)
        now = _counters()
        out: dict[str, float | int] = {"items_per_s": round(n_items / seconds, 2), "stage_work_s": round(seconds, 3)}
        out.update({k: now[k] - self.before[k] for k in now})
        return out
