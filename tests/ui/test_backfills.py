"""A partition backfill over domains, launched through the webserver and run by ``dagster dev``'s daemon.

The backfill is launched with the GraphQL mutation the UI's "Launch backfill" button sends, the
daemon launches one run per partition, and the browser then shows the backfill's page. One of the
three domains has no samples in the shard, so its run fails at the blocking gate and its table is
quarantined while the other two land as Parquet shards.
"""

from __future__ import annotations

import subprocess
import sys

import duckdb
import pytest
from playwright.sync_api import expect

from tests.ui.harness import REPO, UIStack, backfill_run_statuses, launch_asset_backfill, wait_backfill

pytestmark = [pytest.mark.ui, pytest.mark.slow, pytest.mark.timeout(600)]

GOOD = ("animals", "sports")
EMPTY = "arts_culture"  # no sample-wiki_01 paragraph is about the arts

SYNTHESIZE = (
    "import dagster as dg\n"
    "from dagster_project.definitions import defs\n"
    "with dg.DagsterInstance.get() as instance:\n"
    "    res = defs.resolve_job_def('synthesis_job').execute_in_process(\n"
    "        instance=instance, partition_key='sample-wiki_01', raise_on_error=False)\n"
    "    raise SystemExit(0 if res.success else 1)\n"
)

def test_domain_backfill_runs_every_partition_and_quarantines_the_empty_one(stack: UIStack, page) -> None:
    done = subprocess.run([sys.executable, "-c", SYNTHESIZE], cwd=REPO, env=stack.env, capture_output=True,
                          text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]

    backfill_id = launch_asset_backfill(stack, "domain_datasets", [*GOOD, EMPTY], "domains from the test")
    status = wait_backfill(stack, backfill_id)
    assert status["numPartitions"] == 3, status
    # the empty domain's run failed at its gate, so the backfill ends with that partition failed
    assert status["status"] == "COMPLETED_FAILED", status
    runs = backfill_run_statuses(stack, backfill_id)
    assert runs == {"animals": "SUCCESS", "sports": "SUCCESS", EMPTY: "FAILURE"}, f"{runs}\n{stack.logs()}"

    storage = stack.gme_home / "storage" / "domain_datasets"
    for key in GOOD:
        assert (storage / f"{key}.parquet").is_file(), sorted(p.name for p in storage.rglob("*"))
    assert not (storage / f"{EMPTY}.parquet").exists()
    assert (storage / "_quarantine" / f"{EMPTY}.parquet").is_file()  # kept for inspection, never read
    rows = duckdb.sql(f"SELECT domain, count(*) FROM read_parquet('{storage}/*.parquet') GROUP BY 1 ORDER BY 1")
    counts = dict(rows.fetchall())
    assert set(counts) == set(GOOD) and min(counts.values()) >= 3

    # the backfill's page in the browser lists the partitions it ran
    page.goto(f"{stack.ui_url}/runs/b/{backfill_id}")
    expect(page.get_by_text("domain_datasets", exact=False).first).to_be_visible(timeout=60_000)
    body = page.locator("body").inner_text()
    assert backfill_id in body or "domains from the test" in body, body[:2000]
