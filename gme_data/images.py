"""Safe image decoding and a content-addressed image store.

Decoding refuses decompression bombs (a pixel budget checked from the header before pixels are
decoded), applies the EXIF orientation and converts to RGB. The store keeps each distinct image
once, named by the sha1 of its normalised PNG bytes, so lineage can point at exact files.

Large images are decoded as rarely as possible: :meth:`ImageStore.put_source` remembers which stored
image a source file's bytes became (so a picture used by many rows, or a shard read again, is decoded
once), and :func:`image_phash` keeps each file's perceptual hash by content (so the candidates and
filtering stages do not decode the same stored image again to hash it).
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import warnings
from pathlib import Path

import imagehash
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


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


class ImageStore:
    """Content-addressed folder of normalised PNGs (``<root>/<ab>/<sha1>.png``); ``<root>/_sources``
    maps the sha1 of a source file's bytes to the stored image it became (with its size)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def put_source(self, source: str | Path | bytes | Image.Image, max_pixels: int = MAX_PIXELS) -> Path:
        """Decode ``source`` with :func:`open_image` and store it, unless the same source bytes were
        stored before (then no decode at all). The pixel limit still applies to remembered images."""
        if isinstance(source, Image.Image):
            return self.put(open_image(source, max_pixels))
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
        key = hashlib.sha1(data).hexdigest()
        note = self.root / "_sources" / key[:2] / f"{key}.txt"
        known = self._remembered(note, max_pixels)
        if known is not None:
            return known
        img = open_image(data if isinstance(source, bytes) else source, max_pixels)
        path = self.put(img)
        _atomic_write(note, f"{path.stem} {img.size[0]} {img.size[1]}".encode())
        return path

    def _remembered(self, note: Path, max_pixels: int) -> Path | None:
        try:
            digest, w, h = note.read_text().split()
            pixels = int(w) * int(h)
        except (OSError, ValueError):
            return None
        path = self.root / digest[:2] / f"{digest}.png"
        if pixels > max_pixels or len(digest) != 40 or not path.is_file():
            return None
        return path

    def put(self, img: Image.Image) -> Path:
        """Store an (already normalised) image; returns its path. Writes atomically, once."""
        data = png_bytes(img)
        digest = hashlib.sha1(data).hexdigest()
        path = self.root / digest[:2] / f"{digest}.png"
        if not path.exists():
            _atomic_write(path, data)
        return path


_PHASH_DB = "image_phash.sqlite"


def image_phash(path: str | Path, hash_size: int = 8) -> imagehash.ImageHash:
    """The DCT perceptual hash of an image file, computed once per file content (cached by the file's
    sha256 in memory and in ``<GME_DATA_HOME>/cache/image_phash.sqlite``). Raises
    :class:`UnreadableImageError` like :func:`open_image`."""
    from gme_data import settings
    from gme_data.file_hashes import file_sha256
    from gme_data.sqlite_wal import wal_connection

    key = f"{file_sha256(path)}:{hash_size}"
    if key in _PHASH_MEMO:
        return imagehash.hex_to_hash(_PHASH_MEMO[key])
    root = settings.cache_dir()
    con = wal_connection(root / _PHASH_DB, "CREATE TABLE IF NOT EXISTS phash (key TEXT PRIMARY KEY, hex TEXT)")
    row = con.execute("SELECT hex FROM phash WHERE key = ?", (key,)).fetchone()
    if row is None:
        row = (str(imagehash.phash(open_image(path), hash_size=hash_size)),)
        with con:
            con.execute("INSERT OR REPLACE INTO phash VALUES (?, ?)", (key, row[0]))
    _PHASH_MEMO[key] = row[0]
    return imagehash.hex_to_hash(row[0])


_PHASH_MEMO: dict[str, str] = {}
