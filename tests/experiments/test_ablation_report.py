"""The ablation report: deltas, seed spread, the noise rule's labels, the paper's deltas, the chart."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from quality.ablation import ablation_table, write_ablation_report


def _scores(per_variant: dict[str, list[tuple[float, float]]]) -> pd.DataFrame:
    """variant -> per seed (score on a T->T dataset, score on a T->I dataset)."""
    rows = []
    for variant, seeds in per_variant.items():
        for seed, (tt, ti) in enumerate(seeds):
            rows += [{"variant": variant, "seed": seed, "dataset": "docs", "task": "T->T", "score": tt},
                     {"variant": variant, "seed": seed, "dataset": "photos", "task": "T->I", "score": ti}]
    return pd.DataFrame(rows)


SCORES = _scores({
    "baseline": [(50.0, 30.0), (52.0, 30.0), (54.0, 30.0)],         # seed means 40, 41, 42: sd 1
    "no_instructions": [(40.0, 30.0), (42.0, 30.0), (44.0, 30.0)],  # means 35, 36, 37: delta -5, band 2
    "mean_pooling": [(51.0, 30.0), (53.0, 30.0), (55.0, 30.0)],     # means 40.5..42.5: delta +0.5 < band 2
    "adapter_r16": [(60.0, 30.0), (62.0, 30.0), (64.0, 30.0)],      # delta +5: better
})
PAPERS = {"no_instructions": "no_instructions", "mean_pooling": "mean_pooling", "adapter_r16": "lora_rank"}


def test_table_deltas_spread_and_noise_labels() -> None:
    table, tasks = ablation_table(SCORES, papers=PAPERS)
    assert tasks == ["T->I", "T->T"]
    t = table.set_index("variant")
    assert list(table["variant"]) == ["baseline", "adapter_r16", "mean_pooling", "no_instructions"]
    assert t.loc["baseline", "mean"] == pytest.approx(41.0) and t.loc["baseline", "sd"] == pytest.approx(1.0)
    assert (t.loc["baseline", "min"], t.loc["baseline", "max"]) == (40.0, 42.0)
    assert t.loc["no_instructions", "T->T"] == pytest.approx(42.0)
    assert t.loc["no_instructions", "delta"] == pytest.approx(-5.0)
    assert t.loc["no_instructions", "noise_band"] == pytest.approx(2.0)
    assert t.loc["no_instructions", "label"] == "worse"
    assert t.loc["mean_pooling", "label"] == "within noise"
    assert t.loc["adapter_r16", "label"] == "better"
    assert t.loc["no_instructions", "paper_delta"] == -1.5 and t.loc["mean_pooling", "paper_delta"] == -0.4
    assert math.isnan(t.loc["adapter_r16", "paper_delta"])
    assert t.loc["adapter_r16", "paper_note"].startswith("not published")


def test_one_seed_is_never_called_significant() -> None:
    table, _ = ablation_table(_scores({"baseline": [(50.0, 30.0)], "no_instructions": [(10.0, 10.0)]}))
    assert table.set_index("variant").loc["no_instructions", "label"] == "one seed (no spread)"


def test_bad_scores_are_refused() -> None:
    with pytest.raises(ValueError, match="missing column"):
        ablation_table(SCORES.drop(columns=["task"]))
    with pytest.raises(ValueError, match="no rows"):
        ablation_table(SCORES.iloc[0:0])


def test_report_files(tmp_path: Path) -> None:
    rep = write_ablation_report(SCORES, tmp_path / "out", {"mean_pooling": "mean <b>pooling</b>"}, PAPERS,
                                title="Ablations: test", meta={"suite": "local"})
    page = rep.html_path.read_text()
    assert "within noise" in page and "not published" in page and "-1.50" in page and "+0.50" in page
    assert "mean &lt;b&gt;pooling&lt;/b&gt;" in page  # descriptions are escaped, not rendered
    assert "41.00 ± 1.00 (40.00..42.00)" in page
    assert "ablation_files/deltas.png" in page
    with Image.open(rep.chart_path) as img:
        assert img.size[0] > 300 and img.size[1] > 200
    assert "| mean\\_pooling |" in rep.markdown and "within noise" in rep.markdown
    assert "2 x sigma\\_pooled" in rep.markdown  # the rule is stated
    csv = pd.read_csv(tmp_path / "out" / "ablation.csv")
    assert list(csv["variant"]) == list(rep.table["variant"])
