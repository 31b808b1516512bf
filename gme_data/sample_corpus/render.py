"""Images of the sample corpus, made at build time from installed packages (no binaries in the repo).

Recipes (the ``recipe`` of an image entry in ``data/*.jsonl``):

- ``skimage:<name>``: a photo bundled with scikit-image (``skimage.data.<name>``), e.g. chelsea (cat),
  coffee, astronaut, rocket, horse, camera, coins, page; resized to at most 384 px.
- ``poster``: a PIL-drawn illustrative poster: a seeded abstract composition (gradient, shapes) with the
  entity name drawn large on a banner. Each title gives a different, deterministic picture.
- ``near_duplicate:<title>``: the poster of ``<title>``, slightly brightened, resized and JPEG re-encoded
  (a planted near-duplicate image).
- ``broken_bytes``: a ``.png`` file whose bytes are not an image (planted unreadable image).
- ``bomb_png``: a tiny PNG whose header claims 60000 x 60000 pixels (planted decompression bomb).
"""

from __future__ import annotations

import colorsys
import hashlib
import io
import random
import struct
import zlib

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFont

from gme_data.errors import InvalidInputError

MAX_SIDE = 384
POSTER_SIZE = (384, 288)


def skimage_photo(name: str) -> Image.Image:
    """A scikit-image sample photo as an RGB image no larger than ``MAX_SIDE``."""
    import skimage.data

    loader = getattr(skimage.data, name, None)
    if loader is None:
        raise InvalidInputError(f"sample corpus: skimage.data has no photo {name!r}")
    array = loader()
    if isinstance(array, tuple):  # stereo pairs: take the left view
        array = array[0]
    array = np.asarray(array)
    if array.dtype != np.uint8:
        lo, hi = float(array.min()), float(array.max())
        array = ((array - lo) / ((hi - lo) or 1.0) * 255).round().astype(np.uint8)
    img = Image.fromarray(array).convert("RGB")
    img.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    return img


def _seed(title: str) -> int:
    return int(hashlib.sha1(title.encode()).hexdigest()[:12], 16)


def _colour(rng: random.Random, lightness: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hls_to_rgb(rng.random(), lightness, 0.45 + 0.5 * rng.random())
    return int(r * 255), int(g * 255), int(b * 255)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def poster(title: str) -> Image.Image:
    """An illustrative poster for ``title``: deterministic abstract shapes and the name drawn large."""
    rng = random.Random(_seed(title))
    width, height = POSTER_SIZE
    top, bottom = _colour(rng, 0.15 + 0.7 * rng.random()), _colour(rng, 0.15 + 0.7 * rng.random())
    yy, xx = np.mgrid[0:height, 0:width]
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(angle) * xx / width + np.sin(angle) * yy / height
    ramp = ((ramp - ramp.min()) / (np.ptp(ramp) or 1.0))[:, :, None]
    grad = np.array(top)[None, None, :] * (1 - ramp) + np.array(bottom)[None, None, :] * ramp
    img = Image.fromarray(grad.astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    for n in range(rng.randint(6, 10)):
        big = n < 2  # two large shapes give each poster its own coarse layout
        x0, y0 = rng.randint(-40, width - 100), rng.randint(-40, height - 100)
        x1, y1 = x0 + rng.randint(160 if big else 60, 300 if big else 180), y0 + rng.randint(120 if big else 60,
                                                                                               240 if big else 160)
        fill = _colour(rng, 0.1 + 0.8 * rng.random())
        shape = rng.choice(("ellipse", "rectangle", "polygon"))
        if shape == "ellipse":
            draw.ellipse((x0, y0, x1, y1), fill=fill)
        elif shape == "rectangle":
            draw.rectangle((x0, y0, x1, y1), fill=fill)
        else:
            draw.polygon([(rng.randint(x0, x1), rng.randint(y0, y1)) for _ in range(rng.randint(3, 5))], fill=fill)
    banner_y = rng.choice((18, height // 2 - 40, height - 98))
    draw.rectangle((12, banner_y, width - 12, banner_y + 80), fill=(250, 250, 245), outline=(20, 20, 20), width=3)
    size = 44
    font = _font(size)
    while size > 14 and draw.textlength(title, font=font) > width - 44:
        size -= 2
        font = _font(size)
    draw.text((width // 2, banner_y + 40), title, fill=(15, 15, 25), font=font, anchor="mm")
    return img


def near_duplicate(img: Image.Image) -> Image.Image:
    """A lightly edited copy: +4% brightness, resized to 97%, JPEG re-encoded at quality 90."""
    edited = ImageEnhance.Brightness(img).enhance(1.04)
    edited = edited.resize((round(img.width * 0.97), round(img.height * 0.97)), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    edited.save(buf, format="JPEG", quality=90)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(width: int = 60_000, height: int = 60_000) -> bytes:
    """A valid PNG header claiming ``width x height`` grey pixels, with one tiny compressed row."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024, 9)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


BROKEN_BYTES = b"this is not an image, only text pretending to be a PNG file\n"


#: Bump when any recipe's output changes, so existing builds re-render.
RENDER_VERSION = 1


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def render(recipe: str, title: str) -> bytes:
    """The file bytes for one image entry."""
    if recipe.startswith("skimage:"):
        return png_bytes(skimage_photo(recipe.split(":", 1)[1]))
    if recipe == "poster":
        return png_bytes(poster(title))
    if recipe.startswith("near_duplicate:"):
        return png_bytes(near_duplicate(poster(recipe.split(":", 1)[1])))
    if recipe == "broken_bytes":
        return BROKEN_BYTES
    if recipe == "bomb_png":
        return bomb_png()
    raise InvalidInputError(f"sample corpus: unknown image recipe {recipe!r} (article {title!r})")
