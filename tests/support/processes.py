"""Helpers for tests that start real services: free ports, log tails, process-group teardown."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from pathlib import Path


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def log_tail(path: Path | None, n: int = 4000) -> str:
    """The last ``n`` characters of a log file ('<no log>' when there is none)."""
    try:
        return Path(path).read_text(errors="replace")[-n:] if path is not None else "<no log>"
    except OSError:
        return "<no log>"


def stop_group(proc: subprocess.Popen, grace_s: float = 15.0) -> None:
    """SIGTERM the process group of ``proc`` (started with start_new_session), then SIGKILL whatever
    is left: the leader may be gone while grandchildren (workers, code servers) linger."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace_s)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
