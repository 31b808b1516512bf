"""CPU threads for the offline models (MiniLM ONNX, MobileNetV2, rapidocr).

``GME_DATA_INFERENCE_THREADS`` (default 1). Measured on the project's 2-core machine shared with other
jobs (load 5): one thread per model call is 2-4x faster than two, whose spinning threads wait on each
other (MiniLM ONNX 8.5 vs 22 ms/text, MobileNetV2 34 vs 73 ms/image; benchmarks/synthesis_scale_notes.md).
Parallelism comes from processes (Dagster's multiprocess executor, Celery workers), not from threads.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from gme_data.errors import InvalidInputError

THREADS_ENV = "GME_DATA_INFERENCE_THREADS"


def inference_threads() -> int:
    raw = os.environ.get(THREADS_ENV, "").strip()
    if not raw:
        return 1
    try:
        n = int(raw)
    except ValueError as exc:
        raise InvalidInputError(f"{THREADS_ENV}={raw!r}: expected a positive integer") from exc
    if n < 1:
        raise InvalidInputError(f"{THREADS_ENV}={raw!r}: expected a positive integer")
    return n


@contextmanager
def torch_threads(n: int | None = None) -> Iterator[None]:
    """Run torch ops in the block on ``n`` (default :func:`inference_threads`) threads; restore after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n or inference_threads())
    try:
        yield
    finally:
        torch.set_num_threads(before)
