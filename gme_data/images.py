"""Safe image decoding and a content-addressed image store.

Decoding refuses decompression bombs (a pixel budget checked from the header before pixels are
decoded), applies the EXIF orientation and converts to RGB. The store keeps each distinct image
once, named by the sha1 of its normalised PNG bytes, so lineage can point at exact files.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import warnings
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from gme_data.errors import InvalidInputError

#: Images above this many pixels are refused before decoding (a decompression-bomb guard).
MAX_PIXELS = int(os.environ.get("GME_DATA_MAX_PIXELS", 64_000_000))


class UnreadableImageError(InvalidInputError):
    """The bytes are not an image Pillow can decode (or the image is too large)."""


def open_image(source: str | Path | bytes | Image.Image, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode ``source`` to an RGB image with EXIF orientation applied.

    Raises :class:`UnreadableImageError` for undecodable data, truncated files and images over
    ``max_pixels`` (checked from the header, before decoding pixels).
    """
    name = source if isinstance(source, (str, Path)) else f"<{type(source).__name__}>"
    if isinstance(source, Image.Image):
        img = source
    else:
        fp = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")  # noqa: SIM115
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                img = Image.open(fp)
                w, h = img.size
                if w * h > max_pixels:
                    raise UnreadableImageError(
                        f"image {name}: {w}x{h} = {w * h} pixels exceeds the limit of {max_pixels} "
                        "(possible decompression bomb)"
                    )
                img.load()
        except UnreadableImageError:
            raise
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError,
                Image.DecompressionBombWarning) as exc:
            raise UnreadableImageError(f"image {name}: cannot decode ({exc})") from exc
        finally:
            if not isinstance(source, bytes):
                fp.close()
    if img.size[0] == 0 or img.size[1] == 0:
        raise UnreadableImageError(f"image {name}: empty ({img.size[0]}x{img.size[1]})")
    img = ImageOps.exif_transpose(img)
    if img.mode != "RGB":
        if img.mode in ("RGBA", "LA", "P"):
            rgba = img.convert("RGBA")
            bg = Image.new("RGB", rgba.size, (255, 255, 255))
            bg.paste(rgba, mask=rgba.split()[-1])
            img = bg
        else:
            img = img.convert("RGB")
    return img


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


class ImageStore:
    """Content-addressed folder of normalised PNGs (``<root>/<ab>/<sha1>.png``)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def put(self, img: Image.Image) -> Path:
        """Store an (already normalised) image; returns its path. Writes atomically, once."""
        data = png_bytes(img)
        digest = hashlib.sha1(data).hexdigest()
        path = self.root / digest[:2] / f"{digest}.png"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        return path
