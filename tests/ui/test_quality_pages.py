"""The quality pages an operator opens, in headless Chromium: a stage report, the run overview, GX Data Docs.

Uses the UI stack's sample shard ``sample-wiki_01`` (materialized by the backfill test when it ran first,
else here), re-runs its fused_queries + filtered_samples with a stricter image-score threshold so the
report has a previous run to drift from (and does: the drift check warns), mines hard negatives, then follows the links from the Dagster UI's asset metadata and checks
that every plot image loads and that the main tables show no raw JSON.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.ui.harness import UIStack, materialize_in_process

pytestmark = [pytest.mark.ui, pytest.mark.slow, pytest.mark.timeout(900)]
expect.set_options(timeout=60_000)

SHARD = "sample-wiki_01"
STRICTER = {"ops": {"filtered_samples": {"config": {"image_score_threshold": 0.3}}}}  # default here: 0.2
RAW_JSON_CELLS = """() => Array.from(document.querySelectorAll('table.main > tbody > tr > td'))
  .map(td => td.innerText.trim()).filter(t => /^[\\[{]\\s*"/.test(t) || /"[^"]*"\\s*:\\s*[\\[{"\\d]/.test(t))"""
BROKEN_IMAGES = """() => Array.from(document.images)
  .filter(img => !(img.complete && img.naturalWidth > 0)).map(img => img.getAttribute('src'))"""


@pytest.fixture(scope="module")
def runs(stack: UIStack) -> dict[str, str]:
    """Run ids: ``first`` (the whole synthesis of the shard), ``second`` (fused + filtered again), ``mining``."""
    first = _latest_synthesis_run(stack)
    if first is None:
        first = materialize_in_process(stack, "synthesis_job", SHARD)
    second = materialize_in_process(stack, "synthesis_job", SHARD, ("fused_queries", "filtered_samples"),
                                    run_config=STRICTER)
    mining = materialize_in_process(stack, "mine_train_job", None, ("hard_negatives",))
    return {"first": first, "second": second, "mining": mining}


def _latest_synthesis_run(stack: UIStack) -> str | None:
    reports = stack.gme_home / "reports"
    done = [p.parent for p in reports.glob(f"*/filtered_samples__{SHARD}.json")
            if (p.parent / f"raw_corpus__{SHARD}.json").is_file()]
    return max(done, key=lambda d: d.stat().st_mtime).name if done else None


def _no_broken_images(page) -> int:
    page.wait_for_load_state("load")
    broken = page.evaluate(BROKEN_IMAGES)
    assert not broken, f"images that did not load on {page.url}: {broken}"
    return page.evaluate("() => document.images.length")


def _no_raw_json(page) -> None:
    cells = page.evaluate(RAW_JSON_CELLS)
    assert not cells, f"raw JSON in the main tables of {page.url}: {cells[:3]}"


def _metadata_link(page, key: str) -> str:
    row = page.get_by_role("row").filter(has=page.get_by_text(key, exact=True)).first
    row.wait_for()
    return row.locator("a").first.get_attribute("href")


def test_stage_report_overview_and_data_docs_in_the_browser(stack: UIStack, runs: dict[str, str], page) -> None:
    # only loopback: Data Docs pages pull their CSS/JS from CDNs, which an offline machine cannot reach
    page.context.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/])"), lambda route: route.abort())
    first, second = runs["first"], runs["second"]

    # the asset page in the Dagster UI links the run overview and shows the drift verdict
    page.goto(f"{stack.ui_url}/assets/filtered_samples")
    page.get_by_text("Latest materialization").wait_for()
    overview_url = _metadata_link(page, "run_overview")
    assert overview_url == f"{stack.reports_url}/{second}/index.html", overview_url
    drift_row = page.get_by_role("row").filter(has=page.get_by_text("drift", exact=True)).first
    assert f"beyond tolerance against run {first}" in drift_row.inner_text(), drift_row.inner_text()
    flag = page.get_by_role("row").filter(has=page.get_by_text("drift_flagged", exact=True)).first
    assert "true" in flag.inner_text().lower(), flag.inner_text()

    # the check's metadata links the GX Data Docs page of this validation
    page.get_by_role("tab", name="Checks").click()
    page.get_by_text("quality_gate", exact=True).first.click()
    docs = page.locator("a[href*='/data_docs/validations/filtered_samples/']").first
    docs.wait_for()
    docs_url = docs.get_attribute("href")
    assert docs_url.startswith(stack.reports_url) and second in docs_url, docs_url

    # the run overview: every stage of the run with verdict and rows in/out
    page.goto(overview_url)
    rows = page.locator("table.overview tr")
    expect(rows.filter(has_text="filtered_samples").first).to_contain_text("passed")
    expect(rows.filter(has_text="fused_queries").first).to_be_visible()
    _no_raw_json(page)

    # the stage report: plots that load, examples per drop reason, drift against the first run
    page.get_by_role("link", name="filtered_samples", exact=True).click()
    page.get_by_text("Quality report: filtered_samples", exact=False).wait_for()
    n_images = _no_broken_images(page)
    figures = page.locator(".plots figure img")
    assert figures.count() >= 6, f"{figures.count()} plots"
    for title in ("Image-text score", "Consistency rank of the positive", "Dropped records by reason",
                  "Kept rows by combination", "Kept rows by domain", "Query length"):
        expect(page.locator("figcaption", has_text=title).first).to_be_visible()
    expect(page.get_by_role("heading", name="Examples per drop reason")).to_be_visible()
    expect(page.get_by_role("heading", name="Drift against the previous run")).to_be_visible()
    drift = page.locator("table.drift tr", has_text="kept fraction").first
    expect(drift).to_contain_text("beyond tolerance")
    expect(page.locator("p.drift")).to_contain_text(f"against run {first}")  # the flag atop the report
    assert n_images >= figures.count()
    _no_raw_json(page)

    # GX's own Data Docs page of the same validation, served beside the reports
    page.goto(docs_url)
    body = page.locator("body")
    expect(body).to_contain_text("Expectation Validation Result")
    expect(body).to_contain_text("filtered_samples")
    expect(body).to_contain_text(f"{second}__{SHARD}")

    # the mining stage's report: the hard-negative margin against the false-negative guard
    page.goto(f"{stack.reports_url}/{runs['mining']}/hard_negatives.html")
    expect(page.locator("figcaption", has_text="Hard-negative score minus positive score").first).to_be_visible()
    _no_broken_images(page)
    _no_raw_json(page)

    # the index over runs lists both synthesis runs, the newest first
    page.goto(f"{stack.reports_url}/")
    text = page.locator("table.runs").inner_text()
    assert first in text and second in text and text.index(runs["mining"]) < text.index(first), text
    # the first run's overview lists every synthesis stage
    page.goto(f"{stack.reports_url}/{first}/index.html")
    overview = page.locator("table.overview").inner_text()
    for stage in ("raw_corpus", "candidates", "generated_queries", "fused_queries", "filtered_samples"):
        assert stage in overview, overview
