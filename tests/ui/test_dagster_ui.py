"""The real Dagster UI in a real browser: graph, a materialization launched from the UI, its gate, its report.

Starts ``dagster dev`` (webserver + daemon + code server) and the quality-report server on free loopback
ports with a throw-away DAGSTER_HOME/GME_DATA_HOME, registers the sample shards as partitions first,
then drives headless Debian Chromium through playwright (no browser download).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.ui.harness import (
    SHARD,
    UIStack,
    graphql,
    materialize_from_graph,
    open_group_graph,
    wait_for_run,
)

pytestmark = [pytest.mark.ui, pytest.mark.timeout(600)]
expect.set_options(timeout=60_000)  # a loaded CI machine: the UI may take a while to fetch

SYNTHESIS = ("raw_corpus", "candidates", "generated_queries", "fused_queries", "filtered_samples")


def test_asset_graph_shows_the_synthesis_chain(stack: UIStack, page) -> None:
    open_group_graph(page, stack, "synthesis", SYNTHESIS)
    expect(page.get_by_text("Asset Group in", exact=False).first).to_be_visible()
    for name in SYNTHESIS:
        expect(page.get_by_text(name, exact=True).first).to_be_visible()
    # the training group is not drawn, only a link to its first asset
    expect(page.get_by_text("hard_negatives", exact=True).first).to_be_visible()
    assert page.get_by_text("gme_model", exact=True).count() == 0


def test_no_community_dialog_over_the_asset_graph(stack: UIStack, page) -> None:
    """The dagster.yaml the project writes turns Dagster's "Join the Dagster community" dialog off: the
    instance says so and a fresh browser sees the graph with no dialog (nothing was marked seen)."""
    assert "nux:\n  enabled: false" in (Path(stack.env["DAGSTER_HOME"]) / "dagster.yaml").read_text()
    assert graphql(stack, "{ shouldShowNux }")["shouldShowNux"] is False
    assert not (Path(stack.env["DAGSTER_HOME"]) / ".nux" / "nux.yaml").exists()
    open_group_graph(page, stack, "synthesis", SYNTHESIS)
    expect(page.get_by_text("Asset Group in", exact=False).first).to_be_visible()
    page.wait_for_timeout(3000)  # the dialog opens after the app's first queries
    assert page.get_by_role("dialog").count() == 0
    assert page.get_by_text("Join the Dagster community", exact=False).count() == 0


@pytest.mark.slow
def test_materialize_from_ui_then_gate_and_report(stack: UIStack, page) -> None:
    # (b) launch raw_corpus + candidates for the smallest sample shard from the graph's own button
    t0 = time.monotonic()
    run_url = materialize_from_graph(page, stack, ("raw_corpus", "candidates"), SHARD)
    page.goto(run_url)
    expect(page.get_by_text(f"partition: {SHARD}").first).to_be_visible()

    # (c) the run page reports the outcome
    status = wait_for_run(page, run_url, timeout_s=240)
    assert status == "Success", f"run {run_url} ended {status} after {time.monotonic() - t0:.0f}s"
    assert (stack.gme_home / "storage" / "candidates" / f"{SHARD}.parquet").is_file()

    # (d1) the asset page: latest materialization of the shard, its metadata, the gallery's thumbnails
    page.goto(f"{stack.ui_url}/assets/candidates")
    page.get_by_text("Latest materialization").wait_for()
    expect(page.get_by_text(SHARD, exact=True).first).to_be_visible()
    metadata = {key: page.get_by_role("row").filter(has=page.get_by_text(key, exact=True))
                for key in ("drops_by_reason", "quality_gate", "quality_report", "lineage_drops_query", "gallery")}
    for row in metadata.values():
        expect(row.first).to_be_visible()
    assert "expectations passed" in metadata["quality_gate"].first.inner_text()
    expect(metadata["drops_by_reason"].first.get_by_text("reason", exact=True)).to_be_visible()  # a table
    assert "SELECT reason, count(*)" in metadata["lineage_drops_query"].first.inner_text()
    # markdown over 1,000 characters (any data-URL image) is behind "[Show Markdown]", rendered in a dialog
    metadata["gallery"].first.get_by_text("[Show Markdown]").click()
    dialog = page.get_by_role("dialog")
    thumb = dialog.locator("img[src^='data:image/jpeg;base64,']").first
    thumb.wait_for()
    assert thumb.evaluate("img => img.complete && img.naturalWidth > 0"), "gallery thumbnail did not decode"
    dialog.get_by_role("button", name="Close").click()

    # (d2) the checks tab: the blocking Great Expectations gate passed, with its expectations table
    page.get_by_role("tab", name="Checks").click()
    page.get_by_text("This is a blocking asset check.", exact=False).wait_for()
    expect(page.get_by_text("quality_gate", exact=True).first).to_be_visible()
    expect(page.get_by_text("Succeeded", exact=True).first).to_be_visible()
    expect(page.get_by_text("Passed", exact=True).first).to_be_visible()
    expect(page.get_by_text("candidates: all", exact=False).first).to_be_visible()
    page.get_by_text("[Show Markdown]").first.click()  # the "expectations" metadata entry
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("table").first.wait_for()
    expectations = dialog.inner_text()
    assert "PASSED" in expectations and "expect_column_values_to_not_be_null" in expectations, expectations
    assert "❌" not in expectations
    dialog.get_by_role("button", name="Close").click()

    # (d3) the quality report the gate links to, served by the report server
    link = page.get_by_role("link", name=f"candidates__{SHARD}.html").first
    assert link.get_attribute("href").startswith(stack.reports_url + "/")
    with page.context.expect_page() as opened:
        link.click()
    report = opened.value
    report.wait_for_load_state()
    assert report.url.startswith(stack.reports_url)
    body = report.locator("body").inner_text()
    assert "Quality report: candidates" in body and "PASSED" in body, body[:500]
    assert SHARD in body
