"""A tiny real photo/caption set from bundled packages (scikit-image, scikit-learn) for sanity checks.

Captions were written by hand for this project. Used by the offline-default quality benchmark and
the retrieval tests; nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from gme_data.errors import SourceError

#: (source, name, caption): source "skimage" = ``skimage.data.<name>()``, "sklearn" = sample image file.
PHOTO_CAPTIONS: tuple[tuple[str, str, str], ...] = (
    ("skimage", "astronaut", "an astronaut in a space suit posing in front of the American flag"),
    ("skimage", "chelsea", "a tabby cat looking to the side"),
    ("skimage", "coffee", "a cup of coffee on a saucer with a spoon"),
    ("skimage", "rocket", "a rocket standing on the launch pad"),
    ("skimage", "camera", "a man with a film camera on a tripod"),
    ("skimage", "coins", "a collection of old metal coins"),
    ("skimage", "clock", "a clock face showing the time"),
    ("skimage", "horse", "the black silhouette of a horse"),
    ("skimage", "moon", "the surface of the moon covered in craters"),
    ("skimage", "brick", "a wall built from bricks"),
    ("skimage", "grass", "a close-up of green grass"),
    ("skimage", "gravel", "a close-up of gravel stones on the ground"),
    ("skimage", "hubble_deep_field", "a telescope image of distant galaxies in deep space"),
    ("skimage", "retina", "a medical photograph of the retina of a human eye"),
    ("skimage", "page", "a scanned book page about region-based segmentation of coins with markers"),
    ("sklearn", "china.jpg", "a Chinese temple with a traditional curved roof"),
    ("sklearn", "flower.jpg", "a close-up of a pink flower blossom"),
)


def load_photo(source: str, name: str) -> Image.Image:
    """One bundled photo as an RGB PIL image."""
    if source == "skimage":
        from skimage import data

        loader = getattr(data, name, None)
        if loader is None:
            raise SourceError(f"skimage.data has no image {name!r}")
        arr = np.asarray(loader())
        if arr.dtype == bool:
            arr = arr.astype(np.uint8) * 255
        if arr.ndim == 2:
            arr = np.stack([arr] * 3, axis=-1)
        return Image.fromarray(arr[..., :3].astype(np.uint8))
    if source == "sklearn":
        import sklearn.datasets

        path = Path(sklearn.datasets.__file__).parent / "images" / name
        if not path.is_file():
            raise SourceError(f"scikit-learn sample image not found: {path}")
        return Image.open(path).convert("RGB")
    raise SourceError(f"unknown photo source {source!r} (expected 'skimage' or 'sklearn')")


def photo_caption_pairs(limit: int | None = None) -> tuple[list[Image.Image], list[str]]:
    """``(images, captions)`` aligned by index."""
    rows = PHOTO_CAPTIONS[:limit] if limit else PHOTO_CAPTIONS
    return [load_photo(s, n) for s, n, _ in rows], [c for _, _, c in rows]
