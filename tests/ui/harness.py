"""Start the real Dagster UI (``dagster dev``) plus the quality-report server, and a headless Chromium.

Shared by ``tests/ui/test_dagster_ui.py`` and ``scripts/screenshots.py``. Everything runs against a
throw-away ``DAGSTER_HOME``/``GME_DATA_HOME`` on free loopback ports; every child is started in its own
process group and the whole group is killed on exit, even when the caller fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from dagster_project.pools import write_instance_config
from tests.support.processes import free_port, log_tail, stop_group

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("GME_DATA_CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 800}
SHARD = "sample-dirty"  # the smallest bundled shard: raw_corpus + candidates in ~10 s


def wait_http(url: str, timeout_s: float, proc: subprocess.Popen | None = None, log: Path | None = None) -> None:
    """Poll ``url`` until it answers 200; fail early (with the log tail) if ``proc`` died."""
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode} before serving {url}\n"
                               + log_tail(log))
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError) as e:  # not up yet
            last = e
        time.sleep(1.0)
    raise TimeoutError(f"{url} not serving after {timeout_s:.0f}s (last error: {last})\n" + log_tail(log))


@dataclass
class UIStack:
    """A running ``dagster dev`` + report server, and the folders they use."""

    root: Path
    ui_port: int
    reports_port: int
    env: dict[str, str]
    procs: list[subprocess.Popen] = field(default_factory=list)

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.ui_port}"

    @property
    def reports_url(self) -> str:
        return f"http://127.0.0.1:{self.reports_port}"

    @property
    def gme_home(self) -> Path:
        return Path(self.env["GME_DATA_HOME"])

    @property
    def dagster_log(self) -> Path:
        return self.root / "dagster-dev.log"

    def logs(self) -> str:
        return log_tail(self.dagster_log, 8000)


def stack_env(root: Path, reports_port: int) -> dict[str, str]:
    dagster_home = root / "dagster_home"
    write_instance_config(dagster_home)  # telemetry and the community dialog off, the project's pool limits
    env = dict(os.environ)
    env.update({
        "DAGSTER_HOME": str(dagster_home),
        "GME_DATA_HOME": str(root / "var"),
        "GME_DATA_STORAGE_URL": str(root / "var" / "storage"),
        "GME_DATA_REPORTS_URL": f"http://127.0.0.1:{reports_port}",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "GX_ANALYTICS_ENABLED": "False",
        "DAGSTER_DISABLE_TELEMETRY": "1",
        # one step at a time: the machine running this is small and shared
        "GME_DATA_MAX_CONCURRENT": "1",
        "PYTHONUNBUFFERED": "1",
    })
    for var in ("GME_DATA_LINEAGE_DB", "GME_DATA_EXECUTOR"):
        env.pop(var, None)
    # make sure the venv's entry points (dagster, python) are found first
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


REGISTER = (
    "import dagster as dg\n"
    "from dagster_project.jobs import register_shards\n"
    "print(register_shards(dg.DagsterInstance.get()))\n"
)


@contextlib.contextmanager
def ui_stack(root: Path | None = None, start_timeout_s: float = 240.0) -> Iterator[UIStack]:
    """Register the sample shards, then run the report server and ``dagster dev`` until exit."""
    own_root = root is None
    root = Path(tempfile.mkdtemp(prefix="gme-ui-")) if root is None else root
    root.mkdir(parents=True, exist_ok=True)
    reports_port = free_port()
    ui_port = free_port()
    while ui_port == reports_port:
        ui_port = free_port()
    env = stack_env(root, reports_port)
    stack = UIStack(root=root, ui_port=ui_port, reports_port=reports_port, env=env)
    try:
        # dynamic partitions must exist before the UI can offer them
        subprocess.run([sys.executable, "-c", REGISTER], cwd=REPO, env=env, check=True,
                       timeout=300, capture_output=True, text=True)
        reports_log = (root / "report-server.log").open("w")
        stack.procs.append(subprocess.Popen(
            [sys.executable, "-m", "dagster_project.report_server", "--port", str(reports_port)],
            cwd=REPO, env=env, stdout=reports_log, stderr=subprocess.STDOUT, start_new_session=True))
        dagster_log = stack.dagster_log.open("w")
        stack.procs.append(subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster"), "dev", "-h", "127.0.0.1", "-p", str(ui_port),
             "-w", str(REPO / "workspace.yaml")],
            cwd=REPO, env=env, stdout=dagster_log, stderr=subprocess.STDOUT, start_new_session=True))
        wait_http(stack.reports_url + "/", 60, stack.procs[0], root / "report-server.log")
        wait_http(stack.ui_url + "/server_info", start_timeout_s, stack.procs[1], stack.dagster_log)
        wait_code_location(stack, start_timeout_s)
        yield stack
    finally:
        for proc in reversed(stack.procs):
            stop_group(proc)
        if own_root and not os.environ.get("GME_DATA_KEEP_UI_TMP"):
            shutil.rmtree(root, ignore_errors=True)


LOCATION_QUERY = (
    "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus "
    "locationOrLoadError { __typename } } } } }"
)


def graphql(stack: UIStack, query: str, timeout_s: float = 30.0, variables: dict | None = None) -> dict:
    """POST one query (with its ``variables``) to the webserver's GraphQL endpoint; return its ``data``."""
    payload = {"query": query, "variables": variables or {}}
    req = urllib.request.Request(stack.ui_url + "/graphql", data=json.dumps(payload).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout_s) as resp:
        body = json.load(resp)
    if body.get("errors"):
        raise RuntimeError(f"GraphQL errors for {query!r}: {body['errors']}")
    return body["data"]


def wait_code_location(stack: UIStack, timeout_s: float) -> None:
    """Wait until the ``gme_data`` code location has loaded (the webserver serves before it has)."""
    deadline = time.monotonic() + timeout_s
    state = None
    while time.monotonic() < deadline:
        if stack.procs[1].poll() is not None:
            raise RuntimeError("dagster dev exited\n" + stack.logs())
        try:
            entries = graphql(stack, LOCATION_QUERY, 10)["workspaceOrError"]["locationEntries"]
            state = {e["name"]: (e["loadStatus"], (e["locationOrLoadError"] or {}).get("__typename"))
                     for e in entries}
            if state.get("gme_data") == ("LOADED", "RepositoryLocation"):
                return
            if state.get("gme_data", ("", ""))[1] == "PythonError":
                raise RuntimeError(f"code location failed to load: {state}\n" + stack.logs())
        except (urllib.error.URLError, OSError, KeyError, TypeError, RuntimeError):
            pass
        time.sleep(2.0)
    raise TimeoutError(f"code location gme_data not loaded after {timeout_s:.0f}s: {state}\n" + stack.logs())


@contextlib.contextmanager
def browser_page(viewport: dict[str, int] | None = None) -> Iterator:
    """A fresh page in headless Debian Chromium (no browser download: playwright drives /usr/bin/chromium)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport=viewport or VIEWPORT)
            context.set_default_timeout(60_000)
            page = context.new_page()
            yield page
        finally:
            browser.close()


# ---------------------------------------------------------------------------------------------------
# UI steps (dagster-webserver 1.13), with role/text selectors found by exploring the DOM.
# ---------------------------------------------------------------------------------------------------

RUN_TERMINAL = re.compile(r"^(Success|Failure|Canceled)$")


def group_graph_url(stack: UIStack, group: str = "synthesis") -> str:
    # ``/asset-groups/<g>`` shows the global lineage with the groups collapsed; this is one group's graph
    return f"{stack.ui_url}/locations/gme_data/asset-groups/{group}"


def open_group_graph(page, stack: UIStack, group: str = "synthesis", assets: tuple[str, ...] = ()) -> None:
    page.goto(group_graph_url(stack, group))
    for name in assets:
        page.get_by_text(name, exact=True).first.wait_for()


def materialize_from_graph(page, stack: UIStack, assets: tuple[str, ...], partition: str) -> str:
    """Select ``assets`` in the group graph (click, shift-click), open "Materialize selected", pick
    ``partition`` in the partition dialog, launch; return the new run's URL from the toast's "View" link."""
    open_group_graph(page, stack, "synthesis", assets)
    for i, name in enumerate(assets):
        page.get_by_text(name, exact=True).first.click(modifiers=["Shift"] if i else None)
    page.get_by_role("button", name=f"Materialize selected ({len(assets)})…").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text(f"Launch runs to materialize {len(assets)} assets").wait_for()
    dialog.get_by_text("Select a partition or create one").click()
    page.get_by_placeholder("Filter partitions").fill(partition)
    # each item reads "<key> <key>" (label and tooltip): match the item that starts with the key
    page.get_by_role("menuitem", name=re.compile(rf"^{re.escape(partition)}(\s|$)")).first.click()
    page.keyboard.press("Escape")  # close the partition menu, keep the dialog
    dialog.get_by_text("1 partition", exact=True).wait_for()
    dialog.get_by_role("button", name="Launch 1 run").click()
    view = page.locator("a[href^='/runs/']", has_text="View").first
    view.wait_for(timeout=120_000)
    return stack.ui_url + view.get_attribute("href")


def wait_for_run(page, run_url: str, timeout_s: float = 240.0) -> str:
    """Watch the run page's status tag until the run ends; return "Success", "Failure" or "Canceled"."""
    if page.url != run_url:
        page.goto(run_url)
    status = page.get_by_text(RUN_TERMINAL).first
    status.wait_for(timeout=timeout_s * 1000)
    return status.inner_text().strip()


# ---------------------------------------------------------------------------------------------------
# Backfills: the GraphQL requests the UI's "Launch backfill" button and backfill page make.
# ---------------------------------------------------------------------------------------------------

BACKFILL_DONE = ("COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED")


LAUNCH_BACKFILL = """mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }"""
BACKFILL_STATUS = """query Status($id: String!) { partitionBackfillOrError(backfillId: $id) {
  __typename ... on PartitionBackfill { status numPartitions } ... on PythonError { message } } }"""


BACKFILL_RUNS = """query Runs($id: String!) { runsOrError(filter: {tags: [{key: "dagster/backfill", value: $id}]}) {
  __typename ... on Runs { results { status tags { key value } } } ... on PythonError { message } } }"""


def backfill_run_statuses(stack: UIStack, backfill_id: str) -> dict[str, str]:
    """Partition key -> status of the backfill's runs (``SUCCESS``, ``FAILURE``, ...)."""
    runs = graphql(stack, BACKFILL_RUNS, variables={"id": backfill_id})["runsOrError"]["results"]
    return {next(t["value"] for t in r["tags"] if t["key"] == "dagster/partition"): r["status"] for r in runs}


def launch_asset_backfill(stack: UIStack, asset: str, partitions: list[str], title: str) -> str:
    """Ask the webserver for an asset backfill of ``asset`` over ``partitions``; return its id."""
    params = {"assetSelection": [{"path": [asset]}], "partitionNames": partitions, "title": title}
    launched = graphql(stack, LAUNCH_BACKFILL, variables={"params": params})["launchPartitionBackfill"]
    if launched["__typename"] != "LaunchBackfillSuccess":
        raise RuntimeError(f"backfill of {asset} {partitions} not launched: {launched}")
    return launched["backfillId"]


def wait_backfill(stack: UIStack, backfill_id: str, timeout_s: float = 420.0) -> dict:
    """Poll until the daemon has finished the backfill; return ``{status, numPartitions}``."""
    deadline, state = time.monotonic() + timeout_s, {}
    while time.monotonic() < deadline:
        state = graphql(stack, BACKFILL_STATUS, variables={"id": backfill_id})["partitionBackfillOrError"]
        if state.get("status") in BACKFILL_DONE:
            return state
        time.sleep(3)
    raise TimeoutError(f"backfill {backfill_id} not finished after {timeout_s:.0f}s: {state}\n" + stack.logs())


# ---------------------------------------------------------------------------------------------------
# Materializations run in a child process against the stack's instance (they show in the UI).
# ---------------------------------------------------------------------------------------------------

MATERIALIZE = (
    "import json, sys, dagster as dg\n"
    "from dagster_project.definitions import defs\n"
    "job, partition, run_config, assets = sys.argv[1], sys.argv[2] or None, json.loads(sys.argv[3]), sys.argv[4:]\n"
    "with dg.DagsterInstance.get() as instance:\n"
    "    res = defs.resolve_job_def(job).execute_in_process(\n"
    "        instance=instance, partition_key=partition, raise_on_error=False, run_config=run_config,\n"
    "        asset_selection=[dg.AssetKey(a) for a in assets] or None)\n"
    "    print('RUN_ID', res.run_id)\n"
    "    raise SystemExit(0 if res.success else 1)\n"
)


def materialize_in_process(stack: UIStack, job: str, partition: str | None = None, assets: tuple[str, ...] = (),
                           run_config: dict | None = None, timeout_s: float = 600) -> str:
    """Run ``job`` (optionally a subset of its ``assets``, with ``run_config``) for ``partition`` in a child
    process on the stack's instance; return the run id, or fail with the tail of its output."""
    done = subprocess.run([sys.executable, "-c", MATERIALIZE, job, partition or "", json.dumps(run_config or {}),
                           *assets], cwd=REPO, env=stack.env, capture_output=True, text=True, timeout=timeout_s)
    if done.returncode != 0:
        raise RuntimeError(f"{job}[{partition}] {assets} failed:\n{(done.stdout + done.stderr)[-4000:]}")
    return next(line.split()[1] for line in done.stdout.splitlines() if line.startswith("RUN_ID "))
