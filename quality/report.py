"""Render a gate result as a self-contained HTML report (and as markdown for the Dagster UI)."""

from __future__ import annotations

import html
import json
import os
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from quality.drift import Drift, compare, previous_summary, save_summary, summarize
from quality.examples import DropExample, drop_examples
from quality.gates import GateResult
from quality.markdown import md_cell
from quality.names import href, report_stem, run_dir
from quality.overview import CSS as _CSS
from quality.overview import write_atomic, write_run_overview, write_runs_index
from quality.plots import Plot, drift_histograms, stage_plots
from quality.stage_view import SCORE_LABELS, StageView


def _cell(v: Any) -> str:
    if isinstance(v, (dict, list)):
        v = json.dumps(v, default=str)
    return html.escape("" if v is None else str(v))


def _value(v: Any, depth: int = 0) -> str:
    """A value as readable HTML: dicts as small key/value tables, lists as comma lists, never raw JSON."""
    if isinstance(v, str) and v[:1] in "{[":
        try:
            v = json.loads(v)
        except ValueError:
            pass
    if isinstance(v, dict):
        if not v:
            return "<span class='small'>(none)</span>"
        grid = _grid(v)
        if grid is not None and depth < 2:
            return grid
        if depth >= 2:
            return html.escape(", ".join(f"{k}: {_plain_text(x)}" for k, x in v.items()))
        rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{_value(x, depth + 1)}</td></tr>" for k, x in v.items())
        return f"<table class='kv'>{rows}</table>"
    if isinstance(v, (list, tuple)):
        if not v:
            return "<span class='small'>(none)</span>"
        if all(not isinstance(x, (dict, list, tuple)) for x in v):
            return html.escape(", ".join(_plain_text(x) for x in v))
        return "<br>".join(_value(x, depth + 1) for x in v)
    if isinstance(v, float):
        return html.escape(f"{v:.4g}")
    return html.escape("" if v is None else str(v))


def _grid(v: dict[str, Any]) -> str | None:
    """A dict of dicts with the same scalar keys as one table (row per outer key), else None."""
    inner = list(v.values())
    if len(inner) < 2 or not all(isinstance(x, dict) and x for x in inner):
        return None
    keys = list(inner[0])
    if any(list(x) != keys or any(isinstance(y, (dict, list)) for y in x.values()) for x in inner):
        return None
    head = "<tr><th></th>" + "".join(f"<th>{html.escape(str(k))}</th>" for k in keys) + "</tr>"
    rows = "".join(f"<tr><th>{html.escape(str(name))}</th>" + "".join(f"<td>{_value(x[k], 3)}</td>" for k in keys)
                   + "</tr>" for name, x in v.items())
    return f"<table class='kv'>{head}{rows}</table>"


def _plain_text(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (dict, list, tuple)):
        return "; ".join(f"{k}: {_plain_text(x)}" for k, x in v.items()) if isinstance(v, dict) else \
            ", ".join(_plain_text(x) for x in v)
    return "" if v is None else str(v)


def _params(kwargs: dict[str, Any]) -> str:
    return "<br>".join(f"{html.escape(str(k))} = {_value(v, 2)}" for k, v in kwargs.items())


def render_markdown(result: GateResult) -> str:
    """Compact markdown for asset-check metadata: every expectation, failures first, with examples."""
    status = "PASSED" if result.success else "FAILED"
    lines = [f"**{result.suite}: {status}** on {result.n_rows} rows", "",
             "| | expectation | column | unexpected | observed | examples |", "|---|---|---|---|---|---|"]
    for o in sorted(result.outcomes, key=lambda o: o.success):
        mark = "✅" if o.success else "❌"
        unexpected = o.unexpected_text(1)
        ex = md_cell("; ".join(json.dumps(e, default=str) for e in o.examples[:3]))
        obs = "" if o.observed_value is None else md_cell(str(o.observed_value)[:60])
        err = f" error: {md_cell(o.error)}" if o.error else ""
        lines.append(f"| {mark} | `{o.expectation}`{err} | {md_cell(o.column or '')} | {md_cell(unexpected)} | "
                     f"{obs} | {ex} |")
    return "\n".join(lines)


@dataclass
class StageSections:
    """The picture sections of a stage report (plots, drop examples, drift, links)."""

    plots: list[Plot] = field(default_factory=list)
    examples: dict[str, list[DropExample]] | None = None
    drift: Drift | None = None
    drift_plots: list[Plot] = field(default_factory=list)
    data_docs: str | None = None  # link to the GX Data Docs page, relative to the report
    overview: str = "index.html"


def render_html(result: GateResult, asset_key: str, run_id: str, partition: str | None = None,
                profile: pd.DataFrame | None = None, extra: dict[str, Any] | None = None,
                sections: StageSections | None = None) -> str:
    """A standalone page: header, plots, every expectation with counts and failing-row examples,
    examples per drop reason, drift against the previous run, stage numbers and a column profile."""
    status = '<span class="ok">PASSED</span>' if result.success else '<span class="bad">FAILED</span>'
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    rows = []
    for o in sorted(result.outcomes, key=lambda o: o.success):
        cls = "ok" if o.success else "bad"
        examples = "<br>".join(_value(e, 2) for e in o.examples)
        unexpected = o.unexpected_text(2)
        rows.append(
            f"<tr><td class='{cls}'>{'pass' if o.success else 'FAIL'}</td><td><code>{_cell(o.expectation)}</code>"
            f"<div class='small'>{_cell(o.description)}</div></td><td>{_cell(o.column)}</td>"
            f"<td>{_params({k: v for k, v in o.kwargs.items() if k != 'column'})}</td><td>{unexpected}</td>"
            f"<td>{_value(o.observed_value, 1)}</td><td>{examples}{_cell(o.error) if o.error else ''}</td></tr>"
        )
    sec = sections or StageSections()
    links = [f"<a href='{_cell(sec.overview)}'>run overview</a>"]
    if sec.data_docs:
        links.append(f"<a href='{_cell(href(sec.data_docs))}'>Great Expectations Data Docs of this validation</a>")
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{_cell(asset_key)} quality report</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Quality report: <code>{_cell(asset_key)}</code> {status}</h1>",
        f"<p class='small'>suite <code>{_cell(result.suite)}</code> · run <code>{_cell(run_id)}</code> · "
        f"partition <code>{_cell(partition or '-')}</code> · {result.n_rows} rows · {when}</p>",
        f"<p class='links'>{' · '.join(links)}</p>",
    ]
    if sec.drift is not None and sec.drift.flagged:
        parts.append(f"<p class='drift bad'>Drift: {_cell(sec.drift.headline())}</p>")
    if sec.plots:
        parts.append("<h2>Plots</h2><div class='plots'>")
        parts.extend(_figure(p) for p in sec.plots)
        parts.append("</div>")
    parts += [
        "<h2>Expectations</h2><table class='main'><tr><th></th><th>expectation</th><th>column</th>"
        "<th>parameters</th><th>unexpected rows</th><th>observed</th><th>examples of failing rows</th></tr>",
        *rows,
        "</table>",
    ]
    if sec.examples is not None:
        parts.append(_examples_html(sec.examples))
    if sec.drift is not None:
        parts.append(_drift_html(sec.drift, sec.drift_plots))
    if extra:
        parts.append("<h2>Stage metadata</h2><table class='main'>")
        parts.extend(f"<tr><th>{_cell(k)}</th><td>{_value(v)}</td></tr>" for k, v in extra.items())
        parts.append("</table>")
    if profile is not None and not profile.empty:
        parts.append("<h2>Column profile</h2>" + profile.to_html(border=0, na_rep=""))
    parts.append("</body></html>")
    return "\n".join(parts)


def _figure(p: Plot) -> str:
    caption = f"<br><span class='small'>{_cell(p.caption)}</span>" if p.caption else ""
    return (f"<figure><a href='{_cell(href(p.file))}'><img src='{_cell(href(p.file))}' alt='{_cell(p.title)}'></a>"
            f"<figcaption>{_cell(p.title)}{caption}</figcaption></figure>")


def _examples_html(examples: dict[str, list[DropExample]]) -> str:
    parts = ["<h2>Examples per drop reason</h2>"]
    if not any(examples.values()):
        return parts[0] + "<p class='small'>nothing dropped</p>"
    parts.append("<table class='main examples'><tr><th>reason</th><th>query</th><th>image</th><th>positive</th>"
                 "<th>deciding score</th><th>lineage trace</th></tr>")
    for reason, items in examples.items():
        for n, ex in enumerate(items):
            head = f"<td rowspan='{len(items)}'><b>{_cell(reason)}</b></td>" if n == 0 else ""
            img = (f"<img class='thumb' src='{_cell(href(ex.thumbnail))}' alt='query image' title='{_cell(ex.image)}'>"
                   if ex.thumbnail else ("<span class='small'>" + _cell(ex.image) + "</span>" if ex.image else "—"))
            score = "—" if ex.score is None else f"{ex.score:.4g}"
            positive = (f"<img class='thumb' src='{_cell(href(ex.positive_thumbnail))}' alt='positive image'><br>"
                        if ex.positive_thumbnail else "") + (_cell(ex.positive) or "")
            parts.append(
                f"<tr>{head}<td>{_cell(ex.query) or '—'}<div class='small'>{_cell(ex.record_id)}</div></td>"
                f"<td>{img}</td><td>{positive or '—'}</td><td>{score}</td>"
                f"<td><details><summary>SQL</summary><pre>{_cell(ex.trace)}</pre></details></td></tr>")
    parts.append("</table>")
    return "".join(parts)


def _drift_html(drift: Drift, plots: list[Plot]) -> str:
    parts = ["<h2>Drift against the previous run</h2>",
             f"<p class='{'bad' if drift.flagged else 'ok'}'>{_cell(drift.headline())}</p>"]
    if drift.rows:
        parts.append("<table class='main drift'><tr><th>metric</th><th>previous run</th><th>this run</th>"
                     "<th>change</th><th>tolerance</th><th></th></tr>")
        for r in drift.rows:
            mark = "<span class='bad'>beyond tolerance</span>" if r.flagged else "<span class='ok'>ok</span>"
            parts.append(f"<tr><td>{_cell(r.metric)}</td><td>{_value(r.previous)}</td><td>{_value(r.current)}</td>"
                         f"<td>{r.change:+.4g}</td><td>{r.tolerance:g}</td><td>{mark}</td></tr>")
        parts.append("</table><p class='small'>Scores: previous/this run show medians; change is the "
                     "Kolmogorov-Smirnov distance between the two distributions.</p>")
    if plots:
        parts.append("<div class='plots'>" + "".join(_figure(p) for p in plots) + "</div>")
    return "".join(parts)


def profile_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Per-column nulls, distinct values and (for numbers) quantiles."""
    out = []
    for col in df.columns:
        s = df[col]
        hashable = s.map(lambda v: json.dumps(v.tolist() if hasattr(v, "tolist") else v, default=str)
                         if isinstance(v, (list, dict)) or hasattr(v, "tolist") else v)
        row: dict[str, Any] = {"column": col, "dtype": str(s.dtype), "nulls": int(s.isna().sum()),
                               "distinct": int(hashable.nunique(dropna=True))}
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s) and s.notna().any():
            q = s.quantile([0.0, 0.5, 1.0])
            row.update({"min": round(float(q.iloc[0]), 4), "median": round(float(q.iloc[1]), 4),
                        "max": round(float(q.iloc[2]), 4)})
        out.append(row)
    return pd.DataFrame(out)


def build_sections(view: StageView, reports_root: Path, run_id: str, partition: str | None,
                   data_docs: Path | None = None) -> StageSections:
    """Plots, drop examples and drift of one stage, their files written under ``<run>/<stem>_files/``;
    the stage's drift summary is saved for the next run."""
    folder = run_dir(reports_root, run_id) / f"{report_stem(view.asset, partition)}_files"
    if folder.is_dir():
        shutil.rmtree(folder)  # a re-run of the same step in the same run replaces its pictures
    summary = summarize(view, run_id)
    drift = compare(previous_summary(reports_root, view.asset, partition, run_id), summary)
    drift_plots = []
    for name, (prev, cur) in drift.score_pairs.items():
        if not prev.size and not cur.size:
            continue
        title, xlabel = SCORE_LABELS[name]
        drift_plots.append(drift_histograms(name, title, xlabel, prev, cur, folder))
    save_summary(reports_root, view.asset, partition, {**summary, "drift_flagged": bool(drift.flagged)})
    docs = os.path.relpath(data_docs, folder.parent) if data_docs is not None else None
    return StageSections(plots=stage_plots(view, folder), examples=drop_examples(view, folder), drift=drift,
                         drift_plots=drift_plots, data_docs=docs)


def write_report(result: GateResult, df: pd.DataFrame, reports_root: Path, asset_key: str, run_id: str,
                 partition: str | None = None, extra: dict[str, Any] | None = None,
                 sections: StageSections | None = None, headline: dict[str, Any] | None = None) -> Path:
    """Write ``<reports_root>/<run_id>/<asset>[__<partition>].html``, its summary JSON, and refresh the
    run overview (``<run_id>/index.html``) and the index over runs (``<reports_root>/index.html``)."""
    folder = run_dir(reports_root, run_id)
    folder.mkdir(parents=True, exist_ok=True)
    stem = report_stem(asset_key, partition)
    path = folder / f"{stem}.html"
    path.write_text(render_html(result, asset_key, run_id, partition, profile_frame(df), extra, sections))
    drift = sections.drift if sections is not None else None
    summary = {"asset": asset_key, "partition": partition, "suite": result.suite, "success": result.success,
               "rows": result.n_rows, "failed": [o.summary() for o in result.failed], "file": path.name,
               "headline": headline or {}, "written_at": datetime.now(timezone.utc).isoformat(),
               "drift": None if drift is None else drift.headline(),
               "drift_flagged": bool(drift and drift.flagged),
               "data_docs": sections.data_docs if sections is not None else None}
    write_atomic(folder / f"{stem}.json", json.dumps(summary, indent=1, default=str))
    write_run_overview(folder)
    write_runs_index(Path(reports_root))
    return path
