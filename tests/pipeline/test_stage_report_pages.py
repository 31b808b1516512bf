"""Stage report pictures: plots with thresholds, examples per drop reason, drift, GX Data Docs, run overview."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from gme_data.errors import InvalidInputError
from gme_data.lineage import StageOutput
from quality.drift import compare, ks_distance, previous_summary, summarize, tolerances
from quality.examples import drop_examples
from quality.gates import data_docs_index, run_gate
from quality.plots import stage_plots
from quality.report import build_sections, write_report
from quality.stage_view import StageView
from tests.pipeline.test_quality_gates import _good, _params


def _photo(path: Path, colour: tuple[int, int, int]) -> str:
    Image.new("RGB", (320, 200), colour).save(path, format="JPEG")
    return str(path)


def _filter_stage(tmp_path: Path, image_scores: list[float], threshold: float = 0.5) -> StageView:
    """A filtered_samples-like stage: inputs with images, drops by image score / rank / dedup, kept rows."""
    inputs, kept = [], []
    out = StageOutput()
    for i, s in enumerate(image_scores):
        fid = f"fq-{i}"
        img = _photo(tmp_path / f"img{i}.jpg", (40 * (i % 6), 90, 160))
        inputs.append({"id": fid, "query_text": f"what is shown in picture {i}?", "query_image": img,
                       "pos_text": f"Paragraph {i} about the thing in the picture.", "pos_id": f"c{i}"})
        common = {"combination": "IT->T", "query_text": f"what is shown in picture {i}?", "image_score": s,
                  "consistency_rank": 1 + i % 30}
        if s < threshold:
            out.drop(f"fs-{i}", "sample", "image_score_below_threshold", parents=[fid], stage="filtered_samples",
                     score=s, filter="image_score", threshold=threshold, **common)
        elif common["consistency_rank"] > 20:
            out.drop(f"fs-{i}", "sample", "consistency_rank_above_k", parents=[fid], stage="filtered_samples",
                     score=float(common["consistency_rank"]), filter="consistency", **common)
        elif i % 7 == 0:
            out.drop(f"fs-{i}", "sample", "near_duplicate", parents=[fid], stage="filtered_samples", score=0.97,
                     filter="dedup", **common)
        else:
            out.keep(f"fs-{i}", "sample", parents=[fid], stage="filtered_samples", score=s, **common)
            kept.append({"id": f"fs-{i}", "combination": "IT->T" if i % 2 else "T->T",
                         "query_text": common["query_text"], "pos_text": inputs[-1]["pos_text"], "image_score": s,
                         "pos_id": f"c{i}"})
    table = pd.DataFrame(kept)
    domains = table["pos_id"].map(lambda p: "animals" if int(p[1:]) % 3 else "plants")
    return StageView("filtered_samples", table, out, {"image_score": threshold, "consistency_rank": 20,
                                                      "dedup_similarity": 0.95}, pd.DataFrame(inputs), domains)


class _Tables(HTMLParser):
    """Text of every cell of tables with class ``main`` (nested tables count as their cell's text)."""

    def __init__(self) -> None:
        super().__init__()
        self.depth, self.cells, self.imgs = 0, [], []
        self._buf: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and (self.depth or "main" in (a.get("class") or "")):
            self.depth += 1
        if tag == "td" and self.depth == 1:
            self._buf = []
        if tag == "img":
            self.imgs.append(a.get("src"))

    def handle_endtag(self, tag):
        if tag == "table" and self.depth:
            self.depth -= 1
        if tag == "td" and self.depth == 1 and self._buf is not None:
            self.cells.append("".join(self._buf).strip())
            self._buf = None

    def handle_data(self, data):
        if self._buf is not None:
            self._buf.append(data)


def _parse(page: str) -> _Tables:
    p = _Tables()
    p.feed(page)
    return p


def test_plots_draw_every_filter_score_with_threshold(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    view = _filter_stage(tmp_path, [round(float(x), 3) for x in rng.uniform(0.1, 1.0, 60)])
    names = {s.name: s for s in view.scores()}
    assert set(names) == {"image_score", "consistency_rank", "dedup_similarity"}
    assert names["image_score"].threshold == 0.5 and names["image_score"].values.size == 60
    assert names["consistency_rank"].threshold == 20
    plots = stage_plots(view, tmp_path / "r_files")
    files = {Path(p.file).name for p in plots}
    assert {"score-image_score.png", "score-consistency_rank.png", "score-dedup_similarity.png",
            "length-query.png", "length-passage.png", "drops-by-reason.png", "kept-by-combination.png",
            "kept-by-domain.png"} == files
    for p in plots:
        with Image.open(tmp_path / p.file) as im:
            im.load()
            assert im.format == "PNG" and im.width >= 500 and im.height >= 150


def test_hard_negative_margin_plot_uses_the_guard(tmp_path: Path) -> None:
    table = pd.DataFrame({"id": ["a", "b"], "positive_score": [0.8, 0.6],
                          "neg_scores": [[0.7, 0.5, 0.2], [0.55, 0.1]], "query_text": ["q one", "q two"]})
    out = StageOutput()
    out.keep("a", "sample", score=0.8)
    out.keep("b", "sample", score=0.6)
    view = StageView("hard_negatives", table, out, {"hard_negative_margin": -0.05})
    [margin] = view.scores()
    assert margin.threshold == -0.05
    assert sorted(np.round(margin.values, 2).tolist()) == [-0.6, -0.5, -0.3, -0.1, -0.05]
    assert any(p.file.endswith("score-hard_negative_margin.png") for p in stage_plots(view, tmp_path / "f"))


def test_examples_per_reason_have_query_thumbnail_positive_score_and_trace(tmp_path: Path) -> None:
    view = _filter_stage(tmp_path, [0.1, 0.2, 0.3, 0.35, 0.9, 0.95, 0.8, 0.9], threshold=0.5)
    ex = drop_examples(view, tmp_path / "r_files", limit=2)
    low = ex["image_score_below_threshold"]
    assert len(low) == 2  # 4 dropped, 2 shown
    first = low[0]
    assert first.query == "what is shown in picture 0?" and first.score == 0.1
    assert first.positive == "Paragraph 0 about the thing in the picture."  # from the input row (the parent)
    assert first.positive_thumbnail is None  # a text positive: no picture
    assert "child_id = 'fs-0'" in first.trace
    with Image.open(tmp_path / first.thumbnail) as im:
        assert max(im.size) <= 96 and im.format == "JPEG"


def test_an_image_positive_shows_as_a_thumbnail_and_a_missing_image_as_its_path(tmp_path: Path) -> None:
    inputs = pd.DataFrame([{"id": "q1", "query_text": "a red bus", "pos_image": _photo(tmp_path / "bus.jpg", (200, 0, 0)),
                            "query_image": str(tmp_path / "gone.jpg")}])
    out = StageOutput()
    out.drop("fq-1", "query", "image_score_below_threshold", parents=["q1"], score=0.1)
    [ex] = drop_examples(StageView("fused_queries", pd.DataFrame(), out, inputs=inputs), tmp_path / "f")[
        "image_score_below_threshold"]
    assert ex.thumbnail is None and ex.image == str(tmp_path / "gone.jpg")
    with Image.open(tmp_path / ex.positive_thumbnail) as im:
        assert im.getpixel((5, 5))[0] > 150  # the red bus


def test_example_limit_and_tolerances_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GME_DATA_DRIFT_TOLERANCE", "0.02")
    assert tolerances() == (0.02, 0.30)
    monkeypatch.setenv("GME_DATA_DRIFT_TOLERANCE", "lots")
    with pytest.raises(InvalidInputError, match="GME_DATA_DRIFT_TOLERANCE"):
        tolerances()
    monkeypatch.setenv("GME_DATA_DRIFT_TOLERANCE", "1.5")
    with pytest.raises(InvalidInputError, match=r"\(0, 1\]"):
        tolerances()
    monkeypatch.delenv("GME_DATA_DRIFT_TOLERANCE")
    monkeypatch.setenv("GME_DATA_REPORT_EXAMPLES", "-1")
    from quality.examples import example_limit

    with pytest.raises(InvalidInputError, match="GME_DATA_REPORT_EXAMPLES"):
        example_limit()


def test_drift_flags_kept_fraction_drop_rate_and_score_shift(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    before = _filter_stage(tmp_path, rng.uniform(0.45, 1.0, 80).round(3).tolist())
    after = _filter_stage(tmp_path, rng.uniform(0.0, 0.7, 80).round(3).tolist())  # a worse image pool
    prev, cur = summarize(before, "run-a"), summarize(after, "run-b")
    same = compare(prev, summarize(before, "run-c"))
    assert same.previous_run == "run-a" and not same.flagged
    drift = compare(prev, cur)
    flagged = {r.metric for r in drift.flagged}
    assert {"kept fraction", "drop rate: image_score_below_threshold",
            "score distribution: image_score (KS distance)"} <= flagged, flagged
    assert "beyond tolerance" in drift.headline()
    loose = compare(prev, cur, tolerance=1.0, ks_tolerance=1.0)
    assert not loose.flagged
    assert compare(None, cur).previous_run is None
    assert ks_distance(np.array([0.0, 1.0]), np.array([0.0, 1.0])) == 0.0
    assert ks_distance(np.array([0.0, 0.1]), np.array([0.9, 1.0])) == 1.0


def test_previous_run_is_the_latest_other_run_and_torn_files_are_skipped(tmp_path: Path) -> None:
    view = _filter_stage(tmp_path, [0.9, 0.8, 0.2])
    build_sections(view, tmp_path / "reports", "run-1", "shard")
    build_sections(view, tmp_path / "reports", "run-2", "shard")
    history = tmp_path / "reports" / "_history" / "filtered_samples__shard"
    (history / "zz-torn.json").write_text("{not json")
    assert previous_summary(tmp_path / "reports", "filtered_samples", "shard", "run-3")["run_id"] == "run-2"
    assert previous_summary(tmp_path / "reports", "filtered_samples", "shard", "run-2")["run_id"] == "run-1"
    assert previous_summary(tmp_path / "reports", "filtered_samples", "other", "run-2") is None


def test_gate_builds_gx_data_docs_for_every_validation(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    ok = run_gate(_good(), "candidates", _params(), data_docs_root=reports, run_name="run-1__shard-a")
    bad = _good()
    bad.loc[0, "text"] = "short"
    failed = run_gate(bad, "candidates", _params(), data_docs_root=reports, run_name="run-2__shard-a")
    assert ok.success and not failed.success
    assert [o.expectation for o in failed.failed] == ["expect_column_value_lengths_to_be_between"]
    for res in (ok, failed):
        assert res.data_docs is not None and res.data_docs.is_file()
        assert res.data_docs.is_relative_to(reports / "data_docs" / "validations" / "candidates")
        page = re.sub(r"<[^>]+>", " ", res.data_docs.read_text())  # GX's own prose, not expectation names
        assert "Expectation Validation Result" in page and "candidates" in page
        assert "characters long" in page
    assert "short" in failed.data_docs.read_text() and "Failed" in failed.data_docs.read_text()
    index = data_docs_index(reports).read_text()
    assert "run-1__shard-a" in index and "run-2__shard-a" in index  # one site, every validation
    assert run_gate(_good(), "candidates", _params()).data_docs is None  # no folder, no docs


def test_report_page_overview_and_runs_index(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    view = _filter_stage(tmp_path, [0.1, 0.9, 0.8, 0.7, 0.2, 0.95, 0.85])
    for run in ("run-1", "run-2"):
        gate = run_gate(_good(), "candidates", _params(), data_docs_root=reports, run_name=run)
        sections = build_sections(view, reports, run, "shard", gate.data_docs)
        path = write_report(gate, view.table, reports, "filtered_samples", run, "shard",
                            extra={"by_combination": {"IT->T": {"in": 5, "kept": 3}}, "thresholds": {"default": 0.5},
                                   "order": ["image_score", "rules"], "encoded": json.dumps({"a": 1})},
                            sections=sections, headline={"rows_in": 7, "rows_out": 4, "kept_fraction": 0.5714,
                                                         "median image score": 0.85})
        write_report(run_gate(_good(), "candidates", _params()), _good(), reports, "candidates", run, "shard")
    page = path.read_text()
    parsed = _parse(page)
    assert "Plots" in page and "Examples per drop reason" in page and "Drift against the previous run" in page
    assert "no change beyond tolerance against run run-1" in page
    assert any(src.endswith("score-image_score.png") for src in parsed.imgs)
    assert any(src.endswith("drift-image_score.png") for src in parsed.imgs)
    for src in parsed.imgs:
        assert (path.parent / src).is_file(), src
    blob = re.compile(r'^\s*[\[{]\s*"')
    assert parsed.cells and not [c for c in parsed.cells if blob.match(c)], [c for c in parsed.cells if blob.match(c)]
    docs = re.search(r"href='([^']+data_docs[^']+)'", page).group(1)
    assert (path.parent / docs).is_file()

    overview = (reports / "run-2" / "index.html").read_text()
    cells = _parse(overview).cells
    assert "filtered_samples" in cells and "candidates" in cells and "passed" in cells
    assert "7" in cells and "4" in cells and "57.1%" in cells
    assert "median image score: 0.85" in overview and "Data Docs" in overview
    runs = (reports / "index.html").read_text()
    assert runs.index("run-2/index.html") < runs.index("run-1/index.html")  # newest first


def test_odd_partition_names_stay_inside_the_reports_folder_and_links_resolve(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    view = _filter_stage(tmp_path, [0.1, 0.9, 0.8])
    partition = "../../escape/me 100%"
    for run in ("run/1", "run/2"):
        sections = build_sections(view, reports, run, partition)
        path = write_report(run_gate(_good(), "candidates", _params()), view.table, reports, "filtered_samples",
                            run, partition, sections=sections)
    assert sections.drift.previous_run == "run/1"
    written = [p for p in tmp_path.rglob("*") if p.is_file() and not p.is_relative_to(reports)]
    assert all(p.name.startswith("img") for p in written), written  # only the test's own photos outside
    assert path.parent.parent == reports and path.is_relative_to(reports)
    from urllib.parse import unquote

    parsed = _parse(path.read_text())
    assert parsed.imgs
    for src in parsed.imgs:
        assert (path.parent / unquote(src)).is_file(), src
    overview = (path.parent / "index.html").read_text()
    link = re.search(r"<td><a href='([^']+)'>filtered_samples</a>", overview).group(1)
    assert (path.parent / unquote(link)) == path
    runs = (reports / "index.html").read_text()
    assert (reports / unquote(re.search(r"href='([^']+/index.html)'><code>", runs).group(1))).is_file()
