"""Image folders: each image file is an image item; ``<stem>.txt`` beside it is its caption."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from gme_data.errors import SourceError
from gme_data.sources.rows import RawRow
from gme_data.sources.spec import SourceSpec

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})


def iter_image_folder(spec: SourceSpec) -> Iterator[RawRow]:
    """Image files under the folder (recursively, sorted); title = file stem, text = sidecar caption."""
    root = Path(spec.path)
    if not root.is_dir():
        raise SourceError(f"image folder not found: {root}")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    for path in files:
        rel = path.relative_to(root).as_posix()
        fields: dict[str, object] = {"title": path.stem, "image": rel}
        caption = path.with_suffix(".txt")
        # the row builder reads the caption under the read policy (confined, no symlinks, capped)
        text_file = caption.relative_to(root).as_posix() if caption.is_file() or caption.is_symlink() else None
        yield RawRow(rel, fields, base=root, extra={"file": str(path)}, text_file=text_file)
