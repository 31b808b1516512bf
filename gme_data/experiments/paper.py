"""The GME paper's ablations (arXiv 2412.16855) as published: deltas in UMRB-Partial average points.

Only the four numbers the reference gives are numbers here; every other ablation the paper ran is
listed with ``delta=None`` and what the paper says in words ("not published" as a number).
"""

from __future__ import annotations

from dataclasses import dataclass

from gme_data.errors import InvalidInputError


@dataclass(frozen=True)
class PaperAblation:
    """One ablation of the paper: its published delta to GME's recipe (None = no number) and a note."""

    key: str
    label: str
    delta: float | None
    note: str


PAPER_ABLATIONS: dict[str, PaperAblation] = {a.key: a for a in (
    PaperAblation("no_hard_negatives", "without hard negatives", -0.6, "UMRB-Partial avg"),
    PaperAblation("no_instructions", "without instructions", -1.5, "UMRB-Partial avg"),
    PaperAblation("mean_pooling", "mean pooling instead of last token", -0.4, "UMRB-Partial avg"),
    PaperAblation("bidirectional_attention", "bidirectional attention", -1.8, "UMRB-Partial avg"),
    PaperAblation("lora_rank", "LoRA rank 16/32/64 or full fine-tuning instead of r=8", None,
                  "worse than r=8; no number published"),
    PaperAblation("single_type_mix", "a single-type training mix instead of the modality-balanced one", None,
                  "every single-type mix below the balanced mix; no number published"),
    PaperAblation("synthetic_vs_evqa", "synthetic fused data against the original EVQA data", None,
                  "synthetic data better on UMRB-Partial; no number published"),
)}


def paper_ablation(key: str | None, where: str = "paper") -> PaperAblation | None:
    """The named published ablation (None for no key); an unknown key names the known ones."""
    if key is None:
        return None
    if key not in PAPER_ABLATIONS:
        raise InvalidInputError(f"{where}: unknown paper ablation {key!r} (known: {sorted(PAPER_ABLATIONS)})")
    return PAPER_ABLATIONS[key]
