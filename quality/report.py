"""Render a gate result as a self-contained HTML report (and as markdown for the Dagster UI)."""

from __future__ import annotations

import html
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd

from gme_data.storage_names import path_segment
from quality.gates import GateResult
from quality.markdown import md_cell

_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#1d2433}
h1{font-size:1.4rem} .ok{color:#0a7d32} .bad{color:#b3261e}
table{border-collapse:collapse;margin:1rem 0;font-size:.9rem} td,th{border:1px solid #d0d5dd;padding:.35rem .6rem;
vertical-align:top;text-align:left} th{background:#f2f4f7} code{background:#f2f4f7;padding:0 .2rem}
.small{color:#667085;font-size:.85rem}
"""


def _cell(v: Any) -> str:
    if isinstance(v, (dict, list)):
        v = json.dumps(v, default=str)
    return html.escape("" if v is None else str(v))


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


def render_html(result: GateResult, asset_key: str, run_id: str, partition: str | None = None,
                profile: pd.DataFrame | None = None, extra: dict[str, Any] | None = None) -> str:
    """A standalone page: header, every expectation with counts and failing-row examples, a profile."""
    status = '<span class="ok">PASSED</span>' if result.success else '<span class="bad">FAILED</span>'
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    rows = []
    for o in sorted(result.outcomes, key=lambda o: o.success):
        cls = "ok" if o.success else "bad"
        examples = "<br>".join(_cell(e) for e in o.examples)
        unexpected = o.unexpected_text(2)
        rows.append(
            f"<tr><td class='{cls}'>{'pass' if o.success else 'FAIL'}</td><td><code>{_cell(o.expectation)}</code>"
            f"<div class='small'>{_cell(o.description)}</div></td><td>{_cell(o.column)}</td>"
            f"<td>{_cell({k: v for k, v in o.kwargs.items() if k != 'column'})}</td><td>{unexpected}</td>"
            f"<td>{_cell(o.observed_value)}</td><td>{examples}{_cell(o.error) if o.error else ''}</td></tr>"
        )
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{_cell(asset_key)} quality report</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Quality report: <code>{_cell(asset_key)}</code> {status}</h1>",
        f"<p class='small'>suite <code>{_cell(result.suite)}</code> · run <code>{_cell(run_id)}</code> · "
        f"partition <code>{_cell(partition or '-')}</code> · {result.n_rows} rows · {when}</p>",
        "<h2>Expectations</h2><table><tr><th></th><th>expectation</th><th>column</th><th>parameters</th>"
        "<th>unexpected rows</th><th>observed</th><th>examples of failing rows</th></tr>",
        *rows,
        "</table>",
    ]
    if extra:
        parts.append("<h2>Stage metadata</h2><table>")
        parts.extend(f"<tr><th>{_cell(k)}</th><td>{_cell(v)}</td></tr>" for k, v in extra.items())
        parts.append("</table>")
    if profile is not None and not profile.empty:
        parts.append("<h2>Column profile</h2>" + profile.to_html(border=0, na_rep=""))
    parts.append("</body></html>")
    return "\n".join(parts)


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


def write_report(result: GateResult, df: pd.DataFrame, reports_root: Path, asset_key: str, run_id: str,
                 partition: str | None = None, extra: dict[str, Any] | None = None) -> Path:
    """Write ``<reports_root>/<run_id>/<asset>[__<partition>].html`` and refresh the run's index page."""
    run_dir = Path(reports_root) / path_segment(run_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    stem = path_segment(asset_key + (f"__{partition}" if partition else ""))
    path = run_dir / f"{stem}.html"
    path.write_text(render_html(result, asset_key, run_id, partition, profile_frame(df), extra))
    summary = {"asset": asset_key, "partition": partition, "suite": result.suite, "success": result.success,
               "rows": result.n_rows, "failed": [o.summary() for o in result.failed], "file": path.name}
    (run_dir / f"{stem}.json").write_text(json.dumps(summary, indent=1, default=str))
    _write_index(run_dir)
    return path


def _write_index(run_dir: Path) -> None:
    items = []
    for f in sorted(run_dir.glob("*.json")):
        s = json.loads(f.read_text())
        status = "<span class='ok'>passed</span>" if s["success"] else "<span class='bad'>FAILED</span>"
        items.append(f"<tr><td><a href='{_cell(quote(s['file']))}'>{_cell(s['asset'])}</a></td>"
                     f"<td>{_cell(s['partition'] or '-')}</td><td>{status}</td><td>{s['rows']}</td>"
                     f"<td>{_cell('; '.join(s['failed']))}</td></tr>")
    (run_dir / "index.html").write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>Quality reports {run_dir.name}</title>"
        f"<style>{_CSS}</style></head><body><h1>Quality reports for run <code>{_cell(run_dir.name)}</code></h1>"
        "<table><tr><th>asset</th><th>partition</th><th>status</th><th>rows</th><th>failed expectations</th></tr>"
        + "".join(items) + "</table></body></html>"
    )
