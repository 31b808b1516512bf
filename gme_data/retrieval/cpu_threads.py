"""CPU threads for the offline models (MiniLM ONNX, MobileNetV2, rapidocr).

``GME_DATA_INFERENCE_THREADS`` sets the threads per model call; the default is the cores this
process may run on (``os.sched_getaffinity``), at most 2. Waiting threads sleep instead of spinning
(ONNX Runtime ``allow_spinning=0``; ``OMP_WAIT_POLICY=PASSIVE`` for torch, set by :mod:`gme_data`
before torch loads unless the environment sets it; rapidocr, whose threads spin, gets
:func:`spinning_threads`): on the project's 2-core machine, spinning
threads made 2 threads 2x slower than 1 whenever other jobs held a core, while sleeping threads cost
little under load and give the second core's speed when it is free (benchmarks/synthesis_scale_notes.md,
round 2).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from gme_data.errors import InvalidInputError

THREADS_ENV = "GME_DATA_INFERENCE_THREADS"
#: threads per call by default, at most (more did not pay on 2 cores; the models are small)
MAX_DEFAULT_THREADS = 2


def available_cores() -> int:
    """Cores this process may run on (the affinity mask; ``os.cpu_count`` where there is none)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def inference_threads() -> int:
    raw = os.environ.get(THREADS_ENV, "").strip()
    if not raw:
        return min(MAX_DEFAULT_THREADS, available_cores())
    try:
        n = int(raw)
    except ValueError as exc:
        raise InvalidInputError(f"{THREADS_ENV}={raw!r}: expected a positive integer") from exc
    if n < 1:
        raise InvalidInputError(f"{THREADS_ENV}={raw!r}: expected a positive integer")
    return n


def spinning_threads() -> int:
    """Threads for a runtime whose waiting threads spin (rapidocr builds its own ONNX sessions): the
    environment's value, else 1 (2 spinning threads read a text image in 151 ms vs 66 ms for 1 while
    another job held a core)."""
    return inference_threads() if os.environ.get(THREADS_ENV, "").strip() else 1


class ProcessLocalPool:
    """A thread pool made on first use in each process.

    A forked child inherits the parent's :class:`ThreadPoolExecutor` object but not its threads, so work
    submitted to it there never runs (the child hangs); this pool notices the new process id and makes a
    fresh executor."""

    def __init__(self, workers: int, name: str):
        self.workers, self.name = workers, name
        self._executor: ThreadPoolExecutor | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def get(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None or self._pid != os.getpid():
                self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix=self.name)
                self._pid = os.getpid()
            return self._executor


def onnx_session_options(threads: int | None = None) -> Any:
    """ONNX Runtime session options: ``threads`` (default :func:`inference_threads`) intra-op threads
    that sleep rather than spin while waiting, one inter-op thread."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or inference_threads()
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return opts


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
