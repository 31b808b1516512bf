"""Real services for the scale-out tests and benchmark: a loopback Redis and dagster-celery workers.

Every process is started in its own session and stopped by process group, so nothing outlives
the ``with`` block, even when the body raises.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.processes import free_port, log_tail, stop_group

REPO = Path(__file__).resolve().parents[2]
WORKER_APP = "dagster_celery.app"


class ServiceError(RuntimeError):
    """A service did not come up (the message names it and quotes its log)."""


@contextlib.contextmanager
def redis_server(workdir: Path, timeout_s: float = 20.0) -> Iterator[str]:
    """A throwaway redis-server on a free loopback port (no persistence); yields ``redis://127.0.0.1:P``."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise ServiceError("redis-server is not installed (Debian: apt-get install -y redis-server)")
    import redis

    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = workdir / "redis.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(workdir), "--daemonize", "no"],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + timeout_s
        client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1.0)
        while True:
            if proc.poll() is not None:
                raise ServiceError(f"redis-server exited with {proc.returncode}:\n{log_tail(log)}")
            with contextlib.suppress(redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
                if client.ping():
                    break
            if time.monotonic() > deadline:
                raise ServiceError(f"redis-server not answering on port {port} after {timeout_s}s:\n{log_tail(log)}")
            time.sleep(0.1)
        client.close()
        yield f"redis://127.0.0.1:{port}"
    finally:
        stop_group(proc, grace_s=5.0)


@dataclass
class Workers:
    """Running Celery workers: their processes, node names and log files."""

    procs: list[subprocess.Popen] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    def pids(self) -> set[int]:
        """Every pid of the workers and their pool children (now)."""
        import psutil

        out: set[int] = set()
        for p in self.procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc = psutil.Process(p.pid)
                out.add(proc.pid)
                out.update(c.pid for c in proc.children(recursive=True))
        return out

    def rss_bytes(self) -> int:
        """Summed resident memory of the workers and their pool children (now)."""
        import psutil

        total = 0
        for pid in self.pids():
            with contextlib.suppress(psutil.NoSuchProcess):
                total += psutil.Process(pid).memory_info().rss
        return total


def worker_env(broker: str, backend: str, config_dir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a worker needs: the celery config module and the repo on PYTHONPATH."""
    env = dict(os.environ)
    env.update(extra or {})
    env["GME_DATA_CELERY_BROKER"] = broker
    env["GME_DATA_CELERY_BACKEND"] = backend
    paths = [str(config_dir), str(REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def write_celery_config(config_dir: Path, broker: str, backend: str) -> Path:
    """``dagster_celery_config.py``: the module dagster_celery.app loads (as `dagster-celery worker start -y` does)."""
    config_dir.mkdir(parents=True, exist_ok=True)
    path = config_dir / "dagster_celery_config.py"
    path.write_text(f"broker_url = {broker!r}\nresult_backend = {backend!r}\nworker_prefetch_multiplier = 1\n")
    return path


@contextlib.contextmanager
def celery_workers(broker: str, backend: str, workdir: Path, n: int = 2, concurrency: int = 1,
                   env: dict[str, str] | None = None, timeout_s: float = 120.0) -> Iterator[Workers]:
    """``n`` dagster-celery workers (``celery -A dagster_celery.app worker``) on ``broker``; waits until all answer."""
    from celery import Celery

    config_dir = workdir / "celery_config"
    write_celery_config(config_dir, broker, backend)
    full_env = worker_env(broker, backend, config_dir, env)
    workers = Workers()
    tag = f"{os.getpid()}-{int(time.time() * 1000) % 100000}"
    try:
        for i in range(n):
            name = f"gme-w{i}-{tag}@{socket.gethostname()}"
            log = workdir / f"worker{i}.log"
            with open(log, "wb") as out:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "celery", "-A", WORKER_APP, "worker", "--loglevel=INFO",
                     f"--concurrency={concurrency}", "--prefetch-multiplier=1", "-Q", "dagster",
                     "-n", name, "--without-gossip", "--without-mingle", "--without-heartbeat"],
                    stdout=out, stderr=subprocess.STDOUT, env=full_env, cwd=str(REPO), start_new_session=True,
                )
            workers.procs.append(proc)
            workers.names.append(name)
            workers.logs.append(log)
        app = Celery("gme-probe", broker=broker, backend=backend)
        deadline = time.monotonic() + timeout_s
        answered: set[str] = set()
        while answered != set(workers.names):
            for proc, log in zip(workers.procs, workers.logs, strict=True):
                if proc.poll() is not None:
                    raise ServiceError(f"celery worker exited with {proc.returncode}:\n{log_tail(log)}")
            if time.monotonic() > deadline:
                raise ServiceError(f"workers {sorted(set(workers.names) - answered)} did not answer "
                                   f"within {timeout_s}s:\n{log_tail(workers.logs[0])}")
            for reply in app.control.ping(timeout=1.0) or []:
                answered.update(reply)
        app.close()
        yield workers
    finally:
        for proc in workers.procs:
            stop_group(proc)
