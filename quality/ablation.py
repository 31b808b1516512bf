"""The ablation report: every variant's per-task and mean score, its delta to ``baseline`` with the seed
spread, beside the GME paper's published delta, as markdown (Dagster UI) and a standalone HTML page.

Noise rule: a variant's per-seed mean scores (mean over the suite's datasets) give its mean and
standard deviation; ``sigma_pooled = sqrt((sd_variant^2 + sd_baseline^2) / 2)``. A delta with
``|delta| < 2 * sigma_pooled`` is labelled **within noise** (the bar chart's error bars are that
``2 * sigma_pooled`` band, so a bar whose band crosses zero is within noise). With one seed there is
no spread: such deltas are labelled "one seed" and never called significant.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gme_data.experiments.paper import PAPER_ABLATIONS
from quality.ablation_plots import delta_chart
from quality.markdown import md_cell
from quality.names import href
from quality.overview import CSS, write_atomic

NOISE_FACTOR = 2.0
NOISE_RULE = ("|delta| < 2 x sigma_pooled, sigma_pooled = sqrt((sd_variant^2 + sd_baseline^2) / 2) over the "
              "per-seed mean scores: labelled 'within noise'")
BASELINE = "baseline"
REQUIRED = ("variant", "seed", "dataset", "task", "score")


@dataclass
class AblationReport:
    table: pd.DataFrame  # one row per variant
    tasks: list[str]
    markdown: str
    html_path: Path | None = None
    chart_path: Path | None = None


def _sd(values: np.ndarray) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")


def ablation_table(scores: pd.DataFrame, descriptions: dict[str, str] | None = None,
                   papers: dict[str, str | None] | None = None) -> tuple[pd.DataFrame, list[str]]:
    """One row per variant: per-task means, mean +- sd over seeds, min..max, delta to baseline, the
    noise label and the paper's delta (``papers``: variant -> paper ablation key)."""
    missing = [c for c in REQUIRED if c not in scores.columns]
    if missing:
        raise ValueError(f"ablation scores: missing column(s) {missing}")
    if scores.empty:
        raise ValueError("ablation scores: no rows (materialize experiment_grid partitions first)")
    tasks = sorted(scores["task"].unique())
    per_seed = scores.groupby(["variant", "seed"])["score"].mean()
    per_task = scores.groupby(["variant", "task", "seed"])["score"].mean().groupby(["variant", "task"]).mean()
    order = ([BASELINE] if BASELINE in per_seed.index.get_level_values(0) else []) + sorted(
        v for v in per_seed.index.get_level_values(0).unique() if v != BASELINE)
    base = per_seed.loc[BASELINE].to_numpy() if BASELINE in order else None
    rows = []
    for v in order:
        s = per_seed.loc[v].to_numpy()
        row: dict[str, Any] = {"variant": v, "description": (descriptions or {}).get(v, ""), "seeds": len(s)}
        for t in tasks:
            row[t] = float(per_task.get((v, t), float("nan")))
        row.update(mean=float(s.mean()), sd=_sd(s), min=float(s.min()), max=float(s.max()))
        if base is None or v == BASELINE:
            row.update(delta=0.0 if v == BASELINE else float("nan"), noise_band=float("nan"), label="reference"
                       if v == BASELINE else "no baseline")
        else:
            delta = float(s.mean() - base.mean())
            sd_v, sd_b = _sd(s), _sd(base)
            if math.isnan(sd_v) or math.isnan(sd_b):
                band, label = float("nan"), "one seed (no spread)"
            else:
                band = NOISE_FACTOR * math.sqrt((sd_v ** 2 + sd_b ** 2) / 2)
                label = "within noise" if abs(delta) < band or (band == 0 and delta == 0) else (
                    "better" if delta > 0 else "worse")
            row.update(delta=delta, noise_band=band, label=label)
        key = (papers or {}).get(v)
        paper = PAPER_ABLATIONS.get(key) if key else None
        row["paper_ablation"] = paper.label if paper else ""
        row["paper_delta"] = paper.delta if paper and paper.delta is not None else float("nan")
        row["paper_note"] = ("" if paper is None else paper.note if paper.delta is not None else
                             f"not published ({paper.note})")
        rows.append(row)
    return pd.DataFrame(rows), tasks


def _num(v: Any, signed: bool = False) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:+.2f}" if signed else f"{v:.2f}"


def _paper_cell(r: pd.Series) -> str:
    if not r["paper_ablation"]:
        return "-"
    return _num(r["paper_delta"], signed=True) if not math.isnan(r["paper_delta"]) else "not published"


def _spread(r: pd.Series) -> str:
    sd = "-" if math.isnan(r["sd"]) else f"{r['sd']:.2f}"
    return f"{r['mean']:.2f} ± {sd} ({r['min']:.2f}..{r['max']:.2f})"


def render_markdown(table: pd.DataFrame, tasks: list[str], title: str = "Ablations") -> str:
    """The table as markdown (cells made inert), with the noise rule stated."""
    head = ["variant", *tasks, "mean ± sd (min..max)", "Δ to baseline", "noise band (2σ)", "label", "paper Δ"]
    lines = [f"### {md_cell(title)}", "", "| " + " | ".join(md_cell(h) for h in head) + " |",
             "|" + "---|" * len(head)]
    for _, r in table.iterrows():
        cells = [r["variant"], *[_num(r[t]) for t in tasks], _spread(r),
                 "-" if r["variant"] == BASELINE else _num(r["delta"], signed=True), _num(r["noise_band"]),
                 r["label"], _paper_cell(r)]
        lines.append("| " + " | ".join(md_cell(c) for c in cells) + " |")
    lines += ["", f"Scores x100 on the suite's headline metrics, mean over seeds. Noise rule: {md_cell(NOISE_RULE)}. "
              "Paper: GME (arXiv 2412.16855), UMRB-Partial average points; 'not published' = the paper gives no number."]
    return "\n".join(lines)


def render_html(table: pd.DataFrame, tasks: list[str], title: str, chart: str | None, meta: dict[str, Any]) -> str:
    """A standalone page: the chart, the table, every variant's description and the paper's notes."""
    e = html.escape
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    head = ["variant", *tasks, "mean ± sd (min..max)", "Δ to baseline", "noise band (2σ)", "label", "paper Δ",
            "paper note", "description"]
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title><style>{CSS}</style>",
             "</head><body>", f"<h1>{e(title)}</h1>",
             f"<p class='small'>{e(' · '.join(f'{k} {v}' for k, v in meta.items()))} · {when}</p>"]
    if chart:
        parts.append(f"<figure><img src='{e(href(chart))}' alt='deltas to baseline'><figcaption>Delta of the mean "
                     "score to baseline; error bars: the 2σ noise band.</figcaption></figure>")
    parts.append("<table class='main'><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr>")
    for _, r in table.iterrows():
        cls = {"better": "ok", "worse": "bad"}.get(r["label"], "")
        cells = [r["variant"], *[_num(r[t]) for t in tasks], _spread(r),
                 "-" if r["variant"] == BASELINE else _num(r["delta"], signed=True), _num(r["noise_band"]),
                 r["label"], _paper_cell(r), r["paper_note"], r["description"]]
        parts.append("<tr>" + "".join(f"<td class='{cls}'>{e(str(c))}</td>" if i == len(tasks) + 4 else
                                      f"<td>{e(str(c))}</td>" for i, c in enumerate(cells)) + "</tr>")
    parts += ["</table>", f"<p class='small'>Noise rule: {e(NOISE_RULE)}.</p>",
              "<p class='small'>Paper deltas: GME (arXiv 2412.16855), UMRB-Partial average points. Scores here: "
              "the configured suite's headline metrics x100, mean over seeds.</p></body></html>"]
    return "\n".join(parts)


def write_ablation_report(scores: pd.DataFrame, out_dir: str | Path, descriptions: dict[str, str] | None = None,
                          papers: dict[str, str | None] | None = None, title: str = "Ablations",
                          meta: dict[str, Any] | None = None) -> AblationReport:
    """Write ``ablation.html``, ``ablation.md``, ``ablation.csv`` and the delta chart into ``out_dir``."""
    table, tasks = ablation_table(scores, descriptions, papers)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    chart = delta_chart(table, out / "ablation_files")
    md = render_markdown(table, tasks, title)
    page = out / "ablation.html"
    write_atomic(page, render_html(table, tasks, title, chart.file if chart else None, meta or {}))
    write_atomic(out / "ablation.md", md + "\n")
    table.to_csv(out / "ablation.csv", index=False)
    return AblationReport(table, tasks, md, page, out / chart.file if chart else None)
