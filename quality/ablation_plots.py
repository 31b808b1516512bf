"""The ablation report's figure: each variant's delta to baseline, with its 2-sigma noise band as error
bar and the paper's published delta beside it where the paper has the same ablation."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from quality.plots import DPI, KEPT_COLOUR, PREVIOUS_COLOUR, Plot, _save  # noqa: E402

NOISE_COLOUR = "#98a2b3"
PAPER_COLOUR = "#b3261e"


def delta_chart(table: pd.DataFrame, folder: Path) -> Plot | None:
    """Bars of ``delta`` per non-baseline variant (error bars: ``noise_band``), paper deltas as red
    diamonds; None when the table has no variant besides baseline."""
    rows = table[table["variant"] != "baseline"]
    if rows.empty:
        return None
    n = len(rows)
    fig, ax = plt.subplots(figsize=(max(6.4, 0.7 * n + 2), 3.8))
    x = np.arange(n)
    deltas = rows["delta"].to_numpy(dtype=float)
    bands = np.nan_to_num(rows["noise_band"].to_numpy(dtype=float), nan=0.0)
    colours = [NOISE_COLOUR if lab in ("within noise", "one seed (no spread)") else KEPT_COLOUR
               for lab in rows["label"]]
    ax.bar(x, deltas, color=colours, yerr=bands, capsize=4, ecolor=PREVIOUS_COLOUR, label="delta (this workbench)")
    paper = rows["paper_delta"].to_numpy(dtype=float)
    has = [i for i, v in enumerate(paper) if not math.isnan(v)]
    if has:
        ax.scatter(x[has], paper[has], marker="D", color=PAPER_COLOUR, zorder=3, label="paper delta (UMRB-Partial)")
    ax.axhline(0, color="#1d2433", lw=0.8)
    ax.set_xticks(x)
    ax.set_xticklabels(rows["variant"], rotation=35, ha="right")
    ax.set_ylabel("delta to baseline (score points)")
    ax.set_title("Ablations: delta of the mean score to baseline (grey = within noise)")
    ax.legend(loc="best", fontsize=8)
    fig.set_dpi(DPI)
    return Plot(_save(fig, folder, "deltas"), "Deltas to baseline",
                "error bars: 2 x pooled seed sd (the noise band); red diamonds: the paper's published delta")
