"""The run overview (``<reports>/<run_id>/index.html``) and the index over runs (``<reports>/index.html``).

Both are rebuilt from the per-stage summary files (``<run_id>/<stem>.json``) each time a stage
report is written, so a run's overview lists every stage that has reported so far, in the order
they finished, with its gate verdict, rows in/out, headline numbers and drift flag.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from quality.names import href

CSS = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#1d2433}
h1{font-size:1.4rem} .ok{color:#0a7d32} .bad{color:#b3261e}
table{border-collapse:collapse;margin:1rem 0;font-size:.9rem} td,th{border:1px solid #d0d5dd;padding:.35rem .6rem;
vertical-align:top;text-align:left} th{background:#f2f4f7} code{background:#f2f4f7;padding:0 .2rem}
.small{color:#667085;font-size:.85rem} table.kv{margin:0;font-size:.85rem} table.kv th{font-weight:normal}
.plots{display:flex;flex-wrap:wrap;gap:1rem} figure{margin:0;max-width:600px} figure img{max-width:100%;
border:1px solid #d0d5dd} figcaption{font-size:.85rem;color:#475467} img.thumb{max-width:96px;max-height:96px}
pre{white-space:pre-wrap;font-size:.75rem;max-width:40rem} .drift{font-weight:600}
table.examples td{max-width:22rem;overflow-wrap:anywhere}
"""


def _e(v: Any) -> str:
    return html.escape("" if v is None else str(v))


def write_atomic(path: Path, text: str) -> None:
    """Write a whole file or nothing (readers in other processes never see half of it)."""
    tmp = path.with_name(f".{path.name}.{id(text)}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def stage_summaries(run_dir: Path) -> list[dict[str, Any]]:
    """Every stage summary of a run, in the order the stages reported."""
    out = []
    for f in run_dir.glob("*.json"):
        try:
            s = json.loads(f.read_text())
        except (OSError, ValueError):
            continue  # being written by another process: it shows on the next rebuild
        if isinstance(s, dict) and "asset" in s:
            out.append(s)
    return sorted(out, key=lambda s: (str(s.get("written_at") or ""), s["asset"], str(s.get("partition"))))


def _headline(h: dict[str, Any]) -> str:
    items = [(k, v) for k, v in (h or {}).items() if k not in ("rows_in", "rows_out", "kept_fraction")]
    return "<br>".join(f"{_e(k)}: {_e(f'{v:.4g}' if isinstance(v, float) else v)}" for k, v in items)


def write_run_overview(run_dir: Path) -> Path:
    """Rebuild ``<run_dir>/index.html``: one row per stage with verdict, rows in/out and headline numbers."""
    rows = []
    for s in stage_summaries(run_dir):
        verdict = "<span class='ok'>passed</span>" if s["success"] else "<span class='bad'>FAILED</span>"
        h = s.get("headline") or {}
        kept = h.get("kept_fraction")
        drift = s.get("drift") or ""
        drift_cell = f"<span class='bad'>{_e(drift)}</span>" if s.get("drift_flagged") else _e(drift)
        docs = f"<a href='{_e(href(s['data_docs']))}'>Data Docs</a>" if s.get("data_docs") else "—"
        rows.append(
            f"<tr><td><a href='{_e(href(s['file']))}'>{_e(s['asset'])}</a></td><td>{_e(s.get('partition') or '-')}</td>"
            f"<td>{verdict}</td><td>{_e(h.get('rows_in', '—'))}</td><td>{_e(h.get('rows_out', s.get('rows')))}</td>"
            f"<td>{'—' if kept is None else f'{kept:.1%}'}</td><td>{_headline(h)}</td>"
            f"<td>{_e('; '.join(s.get('failed') or [])) or '—'}</td><td>{drift_cell}</td><td>{docs}</td></tr>")
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Run overview {_e(run_dir.name)}</title>"
        f"<style>{CSS}</style></head><body><h1>Run overview: <code>{_e(run_dir.name)}</code></h1>"
        "<table class='main overview'><tr><th>stage</th><th>partition</th><th>gate</th><th>rows in</th>"
        "<th>rows out</th><th>kept</th><th>headline numbers</th><th>failed expectations</th><th>drift</th>"
        "<th>GX</th></tr>" + "".join(rows) + "</table>"
        # the stage links come first on the page; the way out follows the table
        "<p class='small'><a href='../index.html'>all runs</a> · "
        "<a href='../data_docs/index.html'>Great Expectations Data Docs</a></p></body></html>")
    path = run_dir / "index.html"
    write_atomic(path, page)
    return path


def write_runs_index(reports_root: Path) -> Path:
    """Rebuild ``<reports_root>/index.html``: every run with reports, newest first."""
    runs = []
    for run_dir in Path(reports_root).iterdir():
        if not run_dir.is_dir() or run_dir.name.startswith("_") or run_dir.name == "data_docs":
            continue
        stages = stage_summaries(run_dir)
        if not stages:
            continue
        runs.append((max(str(s.get("written_at") or "") for s in stages), run_dir.name, stages))
    rows = []
    for when, name, stages in sorted(runs, reverse=True):
        failed = sum(not s["success"] for s in stages)
        drifted = sum(bool(s.get("drift_flagged")) for s in stages)
        assets = ", ".join(sorted({s["asset"] for s in stages}))
        rows.append(
            f"<tr><td><a href='{_e(href(name))}/index.html'><code>{_e(name)}</code></a></td><td>{_e(when[:19])}</td>"
            f"<td>{len(stages)}</td><td class='{'bad' if failed else 'ok'}'>{failed}</td>"
            f"<td class='{'bad' if drifted else 'ok'}'>{drifted}</td><td>{_e(assets)}</td></tr>")
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Quality reports: all runs</title>"
        f"<style>{CSS}</style></head><body><h1>Quality reports: all runs</h1>"
        "<p class='small'><a href='data_docs/index.html'>Great Expectations Data Docs</a></p>"
        "<table class='main runs'><tr><th>run</th><th>last report (UTC)</th><th>stages</th><th>gates failed</th>"
        "<th>drift flags</th><th>assets</th></tr>" + "".join(rows) + "</table></body></html>")
    path = Path(reports_root) / "index.html"
    write_atomic(path, page)
    return path
