"""Find and kill the llama.cpp servers this test process started (the ``local`` generation backend)."""

from __future__ import annotations

import os
import signal
import threading
import time
import urllib.request

import psutil


def llama_servers() -> list[psutil.Process]:
    """Live ``python -m llama_cpp.server`` processes started by this process (children, any depth)."""
    out = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if "llama_cpp.server" in " ".join(proc.cmdline()) and proc.status() != psutil.STATUS_ZOMBIE:
                out.append(proc)
        except psutil.NoSuchProcess:
            continue
    return out


def _port(proc: psutil.Process) -> int:
    args = proc.cmdline()
    return int(args[args.index("--port") + 1])


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=1) as resp:
            return resp.status == 200
    except OSError:
        return False


class ServerKiller(threading.Thread):
    """Waits for this process's llama.cpp server to answer, lets it work ``after_s``, then SIGKILLs it."""

    def __init__(self, after_s: float, wait_s: float = 120.0, skip: set[int | None] | None = None):
        super().__init__(daemon=True)
        self.after_s, self.wait_s, self.skip = after_s, wait_s, skip or set()
        self.killed_pid: int | None = None

    def run(self) -> None:
        deadline = time.monotonic() + self.wait_s
        while time.monotonic() < deadline:
            servers = [p for p in llama_servers() if p.pid not in self.skip]
            if servers and _answers(_port(servers[0])):
                time.sleep(self.after_s)
                os.kill(servers[0].pid, signal.SIGKILL)
                self.killed_pid = servers[0].pid
                return
            time.sleep(0.1)
