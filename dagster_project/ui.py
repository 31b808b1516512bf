"""``make ui``: the Dagster UI (``dagster dev``) and the quality-report server, stopped together.

    python -m dagster_project.ui --port 3000 --reports-port 3001

Each child runs in a process group of its own (``dagster dev``'s group also holds its webserver,
daemon and code servers). SIGINT, SIGTERM and SIGHUP to this launcher are forwarded to every group
as SIGINT (Dagster's clean shutdown); whatever is still running after ``--grace`` seconds gets
SIGTERM, then SIGKILL, so no process of the stack outlives the launcher.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import psutil

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def start_group(cmd: Sequence[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start ``cmd`` as the leader of a new session (its own process group)."""
    return subprocess.Popen(list(cmd), env=env, start_new_session=True)


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of process group ``pgid``."""
    out = []
    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(proc.info["pid"]) == pgid:
                out.append(proc.info["pid"])
        except (ProcessLookupError, psutil.Error):
            continue
    return out


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _wait_empty(procs: Sequence[subprocess.Popen], deadline: float) -> bool:
    while True:
        for p in procs:
            p.poll()  # reap the leaders: a zombie leader is no running process
        if not any(group_members(p.pid) for p in procs):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)


def stop_groups(procs: Sequence[subprocess.Popen], grace_s: float = 20.0) -> None:
    """SIGINT every group, wait up to ``grace_s``; then SIGTERM (5 s), then SIGKILL what is left."""
    for sig, wait_s in ((signal.SIGINT, grace_s), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        for p in procs:
            _signal_group(p.pid, sig)
        if _wait_empty(procs, time.monotonic() + wait_s):
            return


def run(commands: Sequence[Sequence[str]], grace_s: float = 20.0) -> int:
    """Run ``commands`` (each in its own group) until one exits or a stop signal arrives; stop them all.
    Returns 0 after a stop signal, else the exit status of the command that ended first."""
    received: list[int] = []

    def on_signal(signum: int, _frame) -> None:
        received.append(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in STOP_SIGNALS}
    procs: list[subprocess.Popen] = []
    try:
        for cmd in commands:
            procs.append(start_group(cmd))
        while not received and all(p.poll() is None for p in procs):
            time.sleep(0.2)
        ended = next((p for p in procs if p.poll() is not None), None)
        return 0 if received or ended is None else int(ended.returncode or 0)
    finally:
        stop_groups(procs, grace_s)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def commands(host: str, port: int, reports_port: int, workspace: str) -> list[list[str]]:
    """The report server and ``dagster dev`` of this virtualenv."""
    dagster = str(Path(sys.executable).with_name("dagster"))
    return [[sys.executable, "-m", "dagster_project.report_server", "--port", str(reports_port)],
            [dagster, "dev", "-h", host, "-p", str(port), "-w", workspace]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GME_DATA_UI_PORT") or 3000))
    parser.add_argument("--reports-port", type=int, default=int(os.environ.get("GME_DATA_REPORTS_PORT") or 3001))
    parser.add_argument("--workspace", default="workspace.yaml")
    parser.add_argument("--grace", type=float, default=20.0, help="seconds to wait for a clean shutdown")
    args = parser.parse_args(argv)
    from dagster_project.demo import ensure_dagster_home

    ensure_dagster_home()  # the project's dagster.yaml (pools; telemetry and the community dialog off)
    return run(commands(args.host, args.port, args.reports_port, args.workspace), args.grace)


if __name__ == "__main__":
    sys.exit(main())
