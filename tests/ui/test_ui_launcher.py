"""``make ui``'s launcher: SIGTERM (or Ctrl-C) stops dagster dev's webserver, daemon and code server
and the report server; no process of their groups is left."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from dagster_project.ui import group_members
from tests.support.processes import free_port, log_tail, stop_group
from tests.ui.harness import REPO, UIStack, stack_env, wait_code_location, wait_http

pytestmark = [pytest.mark.ui, pytest.mark.slow, pytest.mark.timeout(600)]


def _stack_processes(launcher: psutil.Process) -> dict[int, str]:
    """pid -> command line of every live descendant of the launcher."""
    out = {}
    for child in launcher.children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                out[child.pid] = " ".join(child.cmdline())[:160]
        except psutil.Error:
            continue
    return out


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_leaves_no_process_of_the_stack(sig: signal.Signals) -> None:
    root = Path(tempfile.mkdtemp(prefix="gme-ui-launcher-"))
    reports_port, ui_port = free_port(), free_port()
    env = stack_env(root, reports_port)
    log = root / "launcher.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "dagster_project.ui", "--port", str(ui_port),
                                 "--reports-port", str(reports_port), "--workspace", str(REPO / "workspace.yaml")],
                                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        stack = UIStack(root=root, ui_port=ui_port, reports_port=reports_port, env=env, procs=[proc, proc])
        wait_http(stack.reports_url + "/", 120, proc, log)
        wait_http(stack.ui_url + "/server_info", 300, proc, log)
        wait_code_location(stack, 300)  # the code server is up too
        launcher = psutil.Process(proc.pid)
        running = _stack_processes(launcher)
        cmdlines = "\n".join(running.values())
        for part in ("dagster_project.report_server", "dagster dev", "-m dagster_webserver", "-m dagster._daemon",
                     "dagster code-server start"):
            assert part in cmdlines, f"{part!r} not among the stack's processes:\n{cmdlines}"
        pgids = set()
        for pid in running:
            with contextlib.suppress(ProcessLookupError):
                pgids.add(os.getpgid(pid))
        assert len(pgids) == 2  # the report server's group and dagster dev's group

        t0 = time.monotonic()
        proc.send_signal(sig)
        assert proc.wait(timeout=120) == 0, log_tail(log)
        left = [p for p in running if psutil.pid_exists(p)
                and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        assert left == [], f"still running {time.monotonic() - t0:.0f}s after {sig.name}: " + \
            "; ".join(running[p] for p in left)
        assert all(group_members(g) == [] for g in pgids)
    finally:
        stop_group(proc)
        for pid in _leftovers(root):
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).kill()
        shutil.rmtree(root, ignore_errors=True)


def _leftovers(root: Path) -> list[int]:
    """Processes started for this test that are somehow still alive (cleanup only)."""
    out = []
    for p in psutil.process_iter(["pid", "environ"]):
        try:
            if (p.info["environ"] or {}).get("DAGSTER_HOME", "").startswith(str(root)):
                out.append(p.info["pid"])
        except psutil.Error:
            continue
    return out
