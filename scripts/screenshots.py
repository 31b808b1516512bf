"""Regenerate the README/operator's-guide screenshots from the real Dagster UI.

    .venv/bin/python scripts/screenshots.py                 # -> docs/screenshots/*.png
    .venv/bin/python scripts/screenshots.py --out /tmp/shots --assets raw_corpus candidates

Starts ``dagster dev`` + the quality-report server on free ports with a throw-away DAGSTER_HOME and
GME_DATA_HOME (the same harness as tests/ui), materializes the ``sample-dirty`` shard through the UI,
then photographs the pages an operator uses, in headless Debian Chromium (1280x800), as small PNGs,
ending with a backfill of two ``domain_datasets`` partitions run by the daemon and the quality pages
(stage report with plots, drop examples and drift; run overview; runs index; GX Data Docs) of
``sample-wiki_01`` synthesized twice (``--only-quality`` photographs just those).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.ui.harness import (  # noqa: E402
    SHARD,
    UIStack,
    browser_page,
    group_graph_url,
    launch_asset_backfill,
    materialize_from_graph,
    materialize_in_process,
    ui_stack,
    wait_backfill,
    wait_for_run,
)

SYNTHESIS = ["raw_corpus", "candidates", "generated_queries", "fused_queries", "filtered_samples"]
MAX_BYTES = 300_000


def save(page, out: Path, name: str, **kwargs) -> Path:
    """Screenshot, then shrink: a 256-colour palette PNG is a fraction of the size and looks the same
    for UI chrome; fall back to the full-colour PNG if that somehow is not smaller."""
    from PIL import Image

    path = out / f"{name}.png"
    page.evaluate("document.activeElement && document.activeElement.blur()")  # no focus tooltips
    page.mouse.move(1, 1)  # nor hover ones
    page.screenshot(path=str(path), animations="disabled", **kwargs)
    raw = path.read_bytes()
    with Image.open(path) as im:
        small = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        small.save(path, optimize=True)
    if path.stat().st_size >= len(raw):
        path.write_bytes(raw)
    size = path.stat().st_size
    print(f"  {path.relative_to(REPO) if path.is_relative_to(REPO) else path}  {size // 1024} KB")
    if size > MAX_BYTES:
        print(f"  warning: {path.name} is over {MAX_BYTES // 1000} KB")
    return path


def settle(page, seconds: float = 1.5) -> None:
    """Let the graph layout / fetches finish before the picture."""
    page.wait_for_load_state("networkidle")
    time.sleep(seconds)


def shoot(stack: UIStack, out: Path, assets: list[str]) -> None:
    with browser_page() as page:
        print(f"materializing {', '.join(assets)} [{SHARD}] from the UI ...")
        run_url = materialize_from_graph(page, stack, tuple(assets), SHARD)
        status = wait_for_run(page, run_url, timeout_s=900)
        if status != "Success":
            raise SystemExit(f"run {run_url} ended {status}; see {stack.dagster_log}")
        settle(page)
        save(page, out, "run")

        # the group's graph only draws node details (checks, partitions, kinds) from ~1600 px wide:
        # render it wide and keep the band with the nodes
        page.set_viewport_size({"width": 1920, "height": 1200})
        page.goto(group_graph_url(stack))
        for name in assets:
            page.get_by_text(name, exact=True).first.wait_for()
        page.get_by_text("Asset checks", exact=True).first.wait_for()
        settle(page, 3)
        boxes = [page.get_by_text(n, exact=True).first.bounding_box() for n in SYNTHESIS]
        boxes.append(page.get_by_text("hard_negatives", exact=True).first.bounding_box())
        x0 = min(b["x"] for b in boxes) - 40
        y0 = min(b["y"] for b in boxes) - 40
        x1 = max(b["x"] + b["width"] for b in boxes) + 40
        y1 = max(b["y"] for b in boxes) + 160
        save(page, out, "asset-graph", clip={"x": x0, "y": y0, "width": x1 - x0, "height": y1 - y0})
        page.set_viewport_size({"width": 1280, "height": 800})

        # the asset page: latest materialization, row count, metadata table (drops_by_reason, ...)
        page.goto(f"{stack.ui_url}/assets/candidates")
        page.get_by_text("Latest materialization").wait_for()
        page.get_by_role("row").filter(has=page.get_by_text("drops_by_reason", exact=True)).first.wait_for()
        page.get_by_text("Metadata", exact=True).first.scroll_into_view_if_needed()
        page.mouse.wheel(0, 330)
        settle(page)
        save(page, out, "asset-metadata")
        # the gallery (markdown with inline data-URL thumbnails) opens in a dialog
        gallery = page.get_by_role("row").filter(has=page.get_by_text("gallery", exact=True)).first
        gallery.get_by_text("[Show Markdown]").click()
        page.get_by_role("dialog").locator("img").first.wait_for()
        settle(page)
        save(page, out, "asset-gallery")
        page.get_by_role("dialog").get_by_role("button", name="Close").click()

        # the blocking quality gate and its expectations table
        page.get_by_role("tab", name="Checks").click()
        page.get_by_text("This is a blocking asset check.", exact=False).wait_for()
        settle(page)
        save(page, out, "asset-check")
        page.get_by_text("[Show Markdown]").first.click()
        page.get_by_role("dialog").get_by_role("table").first.wait_for()
        settle(page)
        save(page, out, "asset-check-expectations")
        page.get_by_role("dialog").get_by_role("button", name="Close").click()

        # the HTML quality report linked from the check (served by dagster_project.report_server)
        with page.context.expect_page() as opened:
            page.get_by_role("link", name=f"candidates__{SHARD}.html").first.click()
        report = opened.value
        report.set_viewport_size({"width": 1280, "height": 800})
        report.wait_for_load_state()
        report.get_by_text("PASSED").first.wait_for()
        save(report, out, "quality-report")
        report.close()

        shoot_launchpad(page, stack, out)
        shoot_backfill(page, stack, out)
    shoot_quality_pages(stack, out)


QUALITY_SHARD = "sample-wiki_01"  # a shard whose filters drop rows, so every section has content


def shoot_quality_pages(stack: UIStack, out: Path) -> None:
    """The stage report (plots, drop examples, drift), the run overview, the runs index and GX Data Docs:
    the shard is synthesized, then its fusion and filters run again, with a stricter image-score threshold,
    so the report has a previous run to drift from."""
    print(f"materializing synthesis_job [{QUALITY_SHARD}] twice, then hard_negatives ...")
    first = materialize_in_process(stack, "synthesis_job", QUALITY_SHARD)
    stricter = {"ops": {"filtered_samples": {"config": {"image_score_threshold": 0.3}}}}  # so the drift shows
    second = materialize_in_process(stack, "synthesis_job", QUALITY_SHARD, ("fused_queries", "filtered_samples"),
                                    run_config=stricter)
    materialize_in_process(stack, "mine_train_job", None, ("hard_negatives",))
    print(f"  runs {first}, {second}")
    with browser_page() as page:
        page.context.route("**/*", lambda route: route.abort() if not route.request.url.startswith(
            ("http://127.0.0.1", "data:")) else route.continue_())
        page.goto(f"{stack.ui_url}/assets/filtered_samples")
        page.get_by_text("Latest materialization").wait_for()
        row = page.get_by_role("row").filter(has=page.get_by_text("quality_report", exact=True)).first
        row.wait_for()
        row.evaluate("el => el.scrollIntoView({block: 'start'})")
        page.mouse.wheel(0, -60)
        settle(page)
        save(page, out, "asset-metadata-quality")

        page.goto(f"{stack.reports_url}/{second}/filtered_samples__{QUALITY_SHARD}.html")
        page.locator(".plots img").first.wait_for()
        settle(page, 0.5)
        save(page, out, "quality-report-plots", full_page=False)
        for heading, name in (("Examples per drop reason", "quality-report-examples"),
                              ("Drift against the previous run", "quality-report-drift")):
            page.get_by_role("heading", name=heading).evaluate("el => el.scrollIntoView({block: 'start'})")
            page.evaluate("window.scrollBy(0, -16)")
            settle(page, 0.5)
            save(page, out, name)
        page.goto(f"{stack.reports_url}/{second}/index.html")
        settle(page, 0.5)
        save(page, out, "run-overview", clip={"x": 0, "y": 0, "width": 1280, "height": 420})
        page.goto(f"{stack.reports_url}/")
        settle(page, 0.5)
        save(page, out, "runs-index", clip={"x": 0, "y": 0, "width": 1280, "height": 360})
        page.goto(f"{stack.reports_url}/{second}/filtered_samples__{QUALITY_SHARD}.html")
        href = page.get_by_role("link", name="Great Expectations Data Docs of this validation").get_attribute("href")
        page.goto(f"{stack.reports_url}/{second}/{href}")
        page.get_by_text("Expectation Validation Result").first.wait_for()
        settle(page, 0.5)
        save(page, out, "data-docs")


def shoot_launchpad(page, stack: UIStack, out: Path) -> None:
    """The job's launchpad with its full default config, for the sample partition."""
    page.goto(f"{stack.ui_url}/locations/gme_data/jobs/synthesis_job/playground")
    partition = page.get_by_placeholder("Partition")
    partition.wait_for()
    partition.click()
    partition.press_sequentially(SHARD, delay=30)  # fill() does not open the suggestions
    page.get_by_role("menuitem", name=SHARD).first.click()
    page.get_by_text(f"partition: {SHARD}", exact=True).first.wait_for()
    # a "Copy tag" tooltip sticks after the pick; the launchpad tab survives a reload, the tooltip not
    page.reload()
    page.get_by_text(f"partition: {SHARD}", exact=True).first.wait_for()
    settle(page, 3)
    save(page, out, "launchpad")


def shoot_backfill(page, stack: UIStack, out: Path) -> None:
    """A domain backfill run by the daemon: one domain with samples in the shard, one without (its gate
    fails), photographed on the backfill's page and on the asset's partitions view."""
    backfill_id = launch_asset_backfill(stack, "domain_datasets", ["architecture_landmarks", "animals"],
                                        "refresh domain slices")
    print(f"domain backfill {backfill_id}: {wait_backfill(stack, backfill_id)}")
    page.goto(f"{stack.ui_url}/runs/b/{backfill_id}")
    page.get_by_text("domain_datasets", exact=False).first.wait_for()
    settle(page, 3)
    save(page, out, "backfill")
    page.goto(f"{stack.ui_url}/assets/domain_datasets?view=partitions")
    page.get_by_text("architecture_landmarks", exact=False).first.wait_for()
    settle(page, 3)
    save(page, out, "domain-partitions")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    parser.add_argument("--assets", nargs="+", default=SYNTHESIS,
                        help="synthesis assets to materialize from the UI first (default: the whole group)")
    parser.add_argument("--only-quality", action="store_true",
                        help="only the quality pages (stage report, run overview, runs index, Data Docs)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if shutil.which("fc-list") and "emoji" not in subprocess.run(
            ["fc-list"], capture_output=True, text=True).stdout.lower():
        print("note: no colour-emoji font (Debian: fonts-noto-color-emoji); the gate's check marks will show as boxes")
    t0 = time.monotonic()
    print("starting dagster dev + report server ...")
    with ui_stack() as stack:
        print(f"  UI {stack.ui_url}, reports {stack.reports_url} ({time.monotonic() - t0:.0f}s)")
        if args.only_quality:
            shoot_quality_pages(stack, args.out)
        else:
            shoot(stack, args.out, args.assets)
    print(f"done in {time.monotonic() - t0:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
