"""Matplotlib figures of a stage report, written as PNG files beside the report's HTML.

Every figure has a title, labelled axes with units and, for filter scores, the threshold drawn as a
red dashed line; an empty distribution is drawn as an empty axis that says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from quality.stage_view import ScoreSeries, StageView  # noqa: E402

FIGSIZE = (6.4, 3.4)
DPI = 90
KEPT_COLOUR = "#3b6fb6"
THRESHOLD_COLOUR = "#b3261e"
PREVIOUS_COLOUR = "#98a2b3"


@dataclass
class Plot:
    """One PNG of a report: its file name (relative to the report) and what it shows."""

    file: str
    title: str
    caption: str = ""


def _save(fig: plt.Figure, folder: Path, name: str) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(folder / f"{name}.png", dpi=DPI)
    plt.close(fig)
    return f"{folder.name}/{name}.png"


def _empty(ax: plt.Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#667085")


def _hist(ax: plt.Axes, values: np.ndarray, **kwargs) -> None:
    bins = min(30, max(5, int(np.sqrt(values.size)) + 1)) if values.size else 10
    if values.size and float(values.min()) == float(values.max()):
        bins = 1
    ax.hist(values, bins=bins, **kwargs)


def score_histogram(series: ScoreSeries, folder: Path) -> Plot:
    """A filter score's histogram with its threshold line."""
    fig, ax = plt.subplots(figsize=FIGSIZE)
    if series.values.size:
        _hist(ax, series.values, color=KEPT_COLOUR, edgecolor="white")
    else:
        _empty(ax, "no values in this run")
    if series.threshold is not None:
        ax.axvline(series.threshold, color=THRESHOLD_COLOUR, linestyle="--", linewidth=2,
                   label=f"{series.threshold_label} {series.threshold:g}")
        ax.legend(loc="upper right", fontsize=8)
    ax.set_title(f"{series.title} (n={series.values.size})")
    ax.set_xlabel(series.xlabel)
    ax.set_ylabel("records (count)")
    caption = "" if not series.values.size else (
        f"median {np.median(series.values):.4g}, min {series.values.min():.4g}, max {series.values.max():.4g}")
    return Plot(_save(fig, folder, f"score-{series.name}"), series.title, caption)


def length_histogram(label: str, values: np.ndarray, folder: Path) -> Plot:
    fig, ax = plt.subplots(figsize=FIGSIZE)
    _hist(ax, values, color=KEPT_COLOUR, edgecolor="white")
    ax.set_title(f"{label.capitalize()} length of kept rows (n={values.size})")
    ax.set_xlabel(f"{label} length (characters)")
    ax.set_ylabel("rows (count)")
    return Plot(_save(fig, folder, f"length-{label}"), f"{label.capitalize()} length",
                f"median {np.median(values):.0f} characters")


def bar_chart(counts: pd.Series | dict[str, int], title: str, xlabel: str, ylabel: str, folder: Path,
              name: str, colour: str = KEPT_COLOUR) -> Plot:
    """Horizontal bars, one per category, with the count written at the end of each bar."""
    s = pd.Series(counts, dtype="float64") if not isinstance(counts, pd.Series) else counts.astype("float64")
    fig, ax = plt.subplots(figsize=(FIGSIZE[0], max(1.8, 0.9 + 0.32 * max(len(s), 1))))
    if len(s):
        labels = [str(k) for k in s.index]
        ax.barh(labels, s.to_numpy(), color=colour)
        ax.invert_yaxis()
        for y, v in enumerate(s.to_numpy()):
            ax.text(v, y, f" {v:g}", va="center", fontsize=8)
        ax.set_xlim(0, float(s.max()) * 1.15 or 1)
    else:
        _empty(ax, "none")
        ax.set_yticks([])
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return Plot(_save(fig, folder, name), title)


def stage_plots(view: StageView, folder: Path) -> list[Plot]:
    """Every figure of a stage report: filter scores, lengths, drops by reason, kept by combination/domain."""
    plots = [score_histogram(s, folder) for s in view.scores()]
    plots.extend(length_histogram(label, values, folder) for label, values in view.lengths().items())
    drops = view.drop_counts()
    plots.append(bar_chart(drops, f"Dropped records by reason ({sum(drops.values())} of {view.n_in})",
                           "dropped records (count)", "reason", folder, "drops-by-reason", THRESHOLD_COLOUR))
    for column in ("combination", "domain"):
        kept = view.kept_by(column)
        if len(kept):
            plots.append(bar_chart(kept, f"Kept rows by {column} ({int(kept.sum())} rows)", "kept rows (count)",
                                   column, folder, f"kept-by-{column}"))
    return plots


def drift_histograms(name: str, title: str, xlabel: str, previous: np.ndarray, current: np.ndarray,
                     folder: Path) -> Plot:
    """Previous and current run's distribution of one score, side by side on shared axes."""
    fig, axes = plt.subplots(1, 2, figsize=(FIGSIZE[0] * 1.3, FIGSIZE[1]), sharex=True, sharey=True)
    for ax, values, label, colour in ((axes[0], previous, "previous run", PREVIOUS_COLOUR),
                                      (axes[1], current, "this run", KEPT_COLOUR)):
        if values.size:
            _hist(ax, values, color=colour, edgecolor="white")
        else:
            _empty(ax, "no values")
        ax.set_title(f"{label} (n={values.size})")
        ax.set_xlabel(xlabel)
    axes[0].set_ylabel("records (count)")
    fig.suptitle(title)
    return Plot(_save(fig, folder, f"drift-{name}"), f"{title}: previous vs this run")
