"""Small real photos (scikit-image samples) for source tests."""

from __future__ import annotations

import numpy as np
import skimage.data
from PIL import Image


def photo(name: str, size: int = 96) -> Image.Image:
    """A small RGB copy of the scikit-image sample photo ``name``."""
    img = Image.fromarray(np.asarray(getattr(skimage.data, name)())).convert("RGB")
    img.thumbnail((size, size))
    return img
