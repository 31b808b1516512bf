"""One writer at a time per asset partition: an exclusive ``flock`` on a lock file.

``assets.common.finish_stage`` holds the lock from its lineage write until the IO manager has put the
shard in place, so two runs of one partition cannot leave lineage from one and the shard from the
other. The lock is re-entrant within a thread (the IO manager takes it again inside that window);
another thread or process waits, logging who holds it, up to a timeout.
"""

from __future__ import annotations

import fcntl
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

#: Seconds a writer waits for a partition's lock before failing (``$GME_DATA_PARTITION_LOCK_TIMEOUT_S``).
DEFAULT_TIMEOUT_S = 900.0

_held: dict[tuple[str, int], int] = {}  # (lock file, thread) -> depth
_guard = threading.Lock()


def lock_timeout_s() -> float:
    return float(os.environ.get("GME_DATA_PARTITION_LOCK_TIMEOUT_S", DEFAULT_TIMEOUT_S))


@contextmanager
def partition_lock(path: Path, what: str, timeout_s: float | None = None,
                   log: Callable[[str], object] | None = None) -> Iterator[None]:
    """Hold the exclusive lock ``path`` (created if missing) for ``what`` (e.g. ``raw_corpus[shard]``).

    Raises TimeoutError naming ``what`` and the holder when it stays taken past ``timeout_s``.
    """
    key = (str(path), threading.get_ident())
    with _guard:
        depth = _held.get(key, 0)
        if depth:
            _held[key] = depth + 1
    if depth:
        try:
            yield
        finally:
            with _guard:
                _held[key] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _acquire(fd, path, what, lock_timeout_s() if timeout_s is None else timeout_s, log)
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
        with _guard:
            _held[key] = 1
        try:
            yield
        finally:
            with _guard:
                _held.pop(key, None)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _acquire(fd: int, path: Path, what: str, timeout_s: float, log: Callable[[str], object] | None) -> None:
    deadline = time.monotonic() + timeout_s
    waited = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            holder = _holder(path)
            if not waited and log is not None:
                log(f"{what}: waiting for the lock {path} held by {holder} (another run writing this partition)")
            waited = True
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: the partition lock {path} is still held by {holder} after "
                                   f"{timeout_s:.0f} s (another run writing this partition?)") from None
            time.sleep(0.05)


def _holder(path: Path) -> str:
    try:
        return path.read_text().strip() or "an unknown process"
    except OSError:
        return "an unknown process"
