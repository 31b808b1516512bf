"""Reports of an evaluation run: ``results.json``, a markdown table, a bar chart and a DuckDB table.

Published UMRB scores are shown beside the run: the UMRB results table of the GME paper (Zhang et al.,
"GME: Improving Universal Multimodal Retrieval by Multimodal LLMs", arXiv:2412.16855; the table's
number differs between versions of the paper, so it is cited by content, not number; the GME-2B/7B
averages 64.45/67.44 also appear on the model cards). They are per-task means over the 47 UMRB datasets; category means of the published models are
derived from them by weighting each task by its number of datasets (the paper's averages are plain
means over datasets, which this reproduces for GME: 2B 64.46 vs the printed 64.45, 7B 67.44 vs 67.44;
the baseline rows do not add up as exactly, e.g. CLIP-SF 43.24 vs 43.66, and are shown as printed).
A run on another suite (``local``, a subset) is not comparable number for number; the report says so.

Every score is printed with what produced it: the instruction set (``gme-mteb@075873f9`` = GME's own
strings, see :mod:`gme_data.retrieval.instructions`), the dataset revision (the hub commit pinned by
the registry, ``unpinned`` or a local copy) and the runtime profile of the embedder
(:mod:`gme_data.retrieval.gme_profiles`, with its dtype).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from gme_data.evaluation.registry import CATEGORIES, PARTIAL_LABEL, TASK_CATEGORY, TASKS, UMRB, counts_by_task
from gme_data.evaluation.runner import SuiteResult, _write_json

#: Published UMRB task means (x100) and overall average; the GME paper's UMRB results table (arXiv:2412.16855).
PUBLISHED: dict[str, dict[str, float]] = {
    "GME-2B": {"T->T": 55.93, "I->I": 29.86, "T->I": 57.36, "T->VD": 87.84, "I->T": 61.93, "T->IT": 76.47,
               "IT->T": 64.58, "IT->I": 37.02, "IT->IT": 66.47, "avg": 64.45},
    "GME-7B": {"T->T": 58.19, "I->I": 31.89, "T->I": 61.35, "T->VD": 89.92, "I->T": 65.83, "T->IT": 80.94,
               "IT->T": 66.18, "IT->I": 42.56, "IT->IT": 73.62, "avg": 67.44},
    "CLIP-SF (UniIR)": {"T->T": 39.75, "I->I": 31.42, "T->I": 59.05, "T->VD": 24.09, "I->T": 62.95,
                        "T->IT": 66.41, "IT->T": 53.32, "IT->I": 34.90, "IT->IT": 55.65, "avg": 43.66},
    "VISTA": {"T->T": 55.15, "I->I": 31.98, "T->I": 32.88, "T->VD": 10.12, "I->T": 31.23, "T->IT": 45.81,
              "IT->T": 53.32, "IT->I": 8.97, "IT->IT": 26.26, "avg": 37.32},
    "E5-V": {"T->T": 52.41, "I->I": 27.36, "T->I": 46.56, "T->VD": 41.22, "I->T": 47.95, "T->IT": 54.13,
             "IT->T": 32.90, "IT->I": 23.17, "IT->IT": 7.23, "avg": 42.52},
}
#: Published rows shown by default (table and chart).
DEFAULT_PUBLISHED: tuple[str, ...] = ("GME-2B", "GME-7B", "CLIP-SF (UniIR)")


def published_categories(model: str) -> dict[str, float]:
    """Dataset-weighted category means of a published model, derived from its task means."""
    pub = PUBLISHED[model]
    n = counts_by_task(UMRB)
    out = {}
    for c in CATEGORIES:
        tasks = [t for t in TASKS if TASK_CATEGORY[t] == c]
        out[c] = sum(pub[t] * n[t] for t in tasks) / sum(n[t] for t in tasks)
    return out


def published_overall(model: str) -> float:
    """Dataset-weighted overall mean over the 47 datasets (matches the printed average to ~0.01)."""
    pub, n = PUBLISHED[model], counts_by_task(UMRB)
    return sum(pub[t] * n[t] for t in TASKS) / sum(n.values())


def _fmt(x: float | None) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.2f}"


def _short_rev(rev: str) -> str:
    """A 40-hex hub commit shortened to 12 characters; other values (``unpinned``, ``local copy``) as they are."""
    if len(rev) == 40 and all(c in "0123456789abcdef" for c in rev):
        return f"`{rev[:12]}`"
    return rev or "unrecorded"


def _label(r: SuiteResult, labels: dict[int, str], i: int) -> str:
    return labels.get(i) or r.model


#: The published row a workbench CLIP-SF run (a CLIP-family embedder, see
#: :mod:`gme_data.retrieval.clip_family`) is shown beside.
CLIP_SF_PUBLISHED = "CLIP-SF (UniIR)"


def is_clip_sf(result: SuiteResult) -> bool:
    """Whether ``result`` was computed by a CLIP-family embedder with CLIP-SF fusion."""
    return any(p.split(" / ")[0] == "clip-sf" for p in result.runtime_profiles)


def _with_clip_sf(runs: Sequence[SuiteResult], names: list[str],
                  published: Sequence[str]) -> tuple[list[str], list[str]]:
    """Run labels marking CLIP-SF runs as computed here, and the published rows with CLIP-SF first
    (so it sits right under the runs) whenever a run is CLIP-SF."""
    if not any(is_clip_sf(r) for r in runs):
        return names, list(published)
    names = [f"CLIP-SF (workbench: {n})" if is_clip_sf(r) else n for r, n in zip(runs, names, strict=True)]
    return names, [CLIP_SF_PUBLISHED, *[p for p in published if p != CLIP_SF_PUBLISHED]]


def markdown_report(result: SuiteResult, compare: Sequence[SuiteResult] = (),
                    published: Sequence[str] = DEFAULT_PUBLISHED, labels: Sequence[str] | None = None) -> str:
    """A markdown summary: task/category table beside published scores, then per-dataset scores.

    A run made by a CLIP-family embedder is labelled ``CLIP-SF (workbench: <label>)`` and the published
    CLIP-SF (UniIR) row follows the runs directly."""
    runs = [result, *compare]
    names = list(labels) if labels else [r.model for r in runs]
    names, published = _with_clip_sf(runs, names, published)
    tasks = [t for t in TASKS if any(t in r.tasks for r in runs)]
    cats = [c for c in CATEGORIES if any(c in r.categories for r in runs)]
    lines = [f"# UMRB-style evaluation: {names[0]}", ""]
    lines.append(f"- suite: `{result.suite}`; datasets evaluated: {len(result.datasets)}"
                 + (f"; unavailable: {len(result.failed)}" if result.failed else "") + f"; created {result.created}")
    lines.append("- scores x100; headline metric per dataset (UMRB's Recall@k = UniIR hit rate, `hit@k`); "
                 "task/category/average = plain means over datasets")
    if result.suite in ("umrb-partial", "partial"):
        lines.append(f"- suite `umrb-partial`: {PARTIAL_LABEL}")
    if result.suite not in ("umrb",) and published:
        lines.append(f"- published rows are UMRB (47 datasets); this run is `{result.suite}`, so they are "
                     "context, not a like-for-like comparison")
    lines.append("- each row names its runtime profile and instruction set; the per-dataset table adds the dataset "
                 "revision (`unpinned`: latest hub copy)")
    lines.append("")
    head = ["model", "runtime profile", "instructions", *tasks, *cats, "avg"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for r, name in zip(runs, names, strict=True):
        cells = [name, ", ".join(r.runtime_profiles), ", ".join(r.instruction_sets)]
        cells += [_fmt(r.tasks.get(t)) for t in tasks] + [_fmt(r.categories.get(c)) for c in cats]
        lines.append("| " + " | ".join(cells + [_fmt(r.overall)]) + " |")
    for p in published:
        pc = published_categories(p)
        cells = [f"{p} (published)", "as published", "as published"]
        cells += [_fmt(PUBLISHED[p][t]) for t in tasks] + [_fmt(pc[c]) for c in cats]
        lines.append("| " + " | ".join(cells + [_fmt(PUBLISHED[p]["avg"])]) + " |")
    lines += ["", "## Per dataset", ""]
    head = ["dataset", "task", "metric", *[f"{n} (score / runtime profile)" for n in names], "instructions",
            "revision", "queries", "candidates"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    slugs = list(dict.fromkeys(s for r in runs for s in r.datasets))
    for slug in slugs:
        ref = next(r.datasets[slug] for r in runs if slug in r.datasets)
        cells = [f"{ref.name} (`{slug}`)", ref.task, f"{ref.metric} (`{ref.metric_key}`)"]
        cells += [f"{_fmt(r.datasets[slug].main_score)} / {r.datasets[slug].runtime_profile or 'unrecorded'}"
                  if slug in r.datasets else "–" for r in runs]
        sets = sorted({r.datasets[slug].instruction_set or "unrecorded" for r in runs if slug in r.datasets})
        revs = sorted({_short_rev(r.datasets[slug].revision) for r in runs if slug in r.datasets})
        cells += [", ".join(sets), ", ".join(revs), str(ref.num_queries), str(ref.num_candidates)]
        lines.append("| " + " | ".join(cells) + " |")
    if result.failed:
        lines += ["", "## Unavailable datasets", ""]
        lines += [f"- `{k}`: {v}" for k, v in result.failed.items()]
    return "\n".join(lines) + "\n"


def bar_chart(result: SuiteResult, path: str | Path, compare: Sequence[SuiteResult] = (),
              published: Sequence[str] = DEFAULT_PUBLISHED, labels: Sequence[str] | None = None) -> Path:
    """Grouped bars per task (+ category means + average) for the run(s) and published models (PNG)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    runs = [result, *compare]
    names = list(labels) if labels else [r.model for r in runs]
    names, published = _with_clip_sf(runs, names, published)
    tasks = [t for t in TASKS if any(t in r.tasks for r in runs)]
    cats = [c for c in CATEGORIES if any(c in r.categories for r in runs)]
    groups = [*tasks, *cats, "avg"]
    series: list[tuple[str, list[float]]] = []
    for r, name in zip(runs, names, strict=True):
        vals = [r.tasks.get(t, math.nan) for t in tasks] + [r.categories.get(c, math.nan) for c in cats]
        series.append((name, vals + [r.overall]))
    for p in published:
        pc = published_categories(p)
        series.append((f"{p} (pub.)", [PUBLISHED[p][t] for t in tasks] + [pc[c] for c in cats]
                       + [PUBLISHED[p]["avg"]]))
    n = len(series)
    width = 0.8 / max(n, 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(groups) + 2), 4.2), dpi=110)
    for i, (name, vals) in enumerate(series):
        xs = [g + (i - (n - 1) / 2) * width for g in range(len(groups))]
        hatch = "//" if "(pub.)" in name else None
        ax.bar(xs, [0 if math.isnan(v) else v for v in vals], width, label=name, hatch=hatch,
               edgecolor="white" if hatch else None, linewidth=0)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("score (x100)")
    ax.set_ylim(0, 100)
    ax.set_title(f"{names[0]} on {result.suite} vs published UMRB", fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path


def write_duckdb(result: SuiteResult, db_path: str | Path, table: str = "umrb_results", run_id: str | None = None) -> int:
    """Write per-(dataset, metric) rows to ``table`` and task/category/overall means to ``<table>_summary``.

    Rows of the same (model, suite) are replaced. Returns the number of dataset rows written.
    """
    import duckdb
    import pandas as pd

    if not table.replace("_", "").isalnum():
        raise ValueError(f"invalid table name {table!r}")
    run_id = run_id or f"{result.model}@{result.created}"
    created = datetime.fromisoformat(result.created) if result.created else datetime.now()
    rows: list[dict[str, Any]] = []
    for slug, r in result.datasets.items():
        for metric, value in r.scores.items():
            rows.append({"run_id": run_id, "model": result.model, "suite": result.suite, "dataset": slug,
                         "name": r.name, "task": r.task, "category": r.category, "metric": metric,
                         "value": float(value), "is_main": metric == r.metric_key, "num_queries": r.num_queries,
                         "num_candidates": r.num_candidates, "created_at": created})
    summary = [{"run_id": run_id, "model": result.model, "suite": result.suite, "level": level, "key": k,
                "value": float(v), "created_at": created}
               for level, d in (("task", result.tasks), ("category", result.categories),
                                ("overall", {"avg": result.overall})) for k, v in d.items() if not math.isnan(v)]
    Path(db_path).parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(db_path))
    try:
        con.execute(f"""CREATE TABLE IF NOT EXISTS {table} (run_id VARCHAR, model VARCHAR, suite VARCHAR,
            dataset VARCHAR, name VARCHAR, task VARCHAR, category VARCHAR, metric VARCHAR, value DOUBLE,
            is_main BOOLEAN, num_queries INTEGER, num_candidates INTEGER, created_at TIMESTAMP)""")
        con.execute(f"""CREATE TABLE IF NOT EXISTS {table}_summary (run_id VARCHAR, model VARCHAR, suite VARCHAR,
            level VARCHAR, key VARCHAR, value DOUBLE, created_at TIMESTAMP)""")
        con.execute("BEGIN TRANSACTION")
        for t in (table, f"{table}_summary"):
            con.execute(f"DELETE FROM {t} WHERE model = ? AND suite = ?", [result.model, result.suite])
        if rows:
            con.register("_gme_rows", pd.DataFrame(rows))
            con.execute(f"INSERT INTO {table} SELECT run_id, model, suite, dataset, name, task, category, metric, "
                        "value, is_main, num_queries, num_candidates, created_at FROM _gme_rows")
        if summary:
            con.register("_gme_summary", pd.DataFrame(summary))
            con.execute(f"INSERT INTO {table}_summary SELECT run_id, model, suite, level, key, value, created_at "
                        "FROM _gme_summary")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    finally:
        con.close()
    return len(rows)


def load_results(path: str | Path) -> SuiteResult:
    """A :class:`SuiteResult` from a ``results.json`` file or a directory holding one."""
    p = Path(path)
    if p.is_dir():
        p = p / "results.json"
    return SuiteResult.from_json(json.loads(p.read_text()))


def write_reports(result: SuiteResult, out_dir: str | Path, compare: Sequence[SuiteResult] = (),
                  db_path: str | Path | None = None, published: Sequence[str] = DEFAULT_PUBLISHED,
                  labels: Sequence[str] | None = None) -> dict[str, Path]:
    """``results.json``, ``report.md``, ``scores.png`` (and the DuckDB table if ``db_path``) in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"results": out / "results.json", "markdown": out / "report.md", "chart": out / "scores.png"}
    _write_json(paths["results"], result.to_json())
    paths["markdown"].write_text(markdown_report(result, compare, published, labels))
    bar_chart(result, paths["chart"], compare, published, labels)
    if db_path is not None:
        write_duckdb(result, db_path)
        paths["duckdb"] = Path(db_path)
    return paths
