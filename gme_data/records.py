"""Typed records: an ``Item`` (text, image, or both) and a training ``Sample``.

Items cross every stage boundary. Inside Dagster assets they travel as table rows
(``Item.to_row`` / ``Item.from_row``) whose images are file paths in the content-addressed
image store (:mod:`gme_data.images`), so Parquet shards stay small and lineage stays exact.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from PIL import Image

from gme_data.errors import InvalidItemError

Modality = Literal["text", "image", "fused"]
ImageLike = str | Path | bytes | Image.Image

#: The eight modality combinations of GME's training mixture (query -> candidate).
COMBINATIONS: tuple[str, ...] = ("T->T", "I->I", "T->I", "I->T", "T->IT", "IT->T", "IT->I", "IT->IT")
_MODALITY_CODE = {"text": "T", "image": "I", "fused": "IT"}


def modality_code(modality: Modality) -> str:
    """``"text"`` -> ``"T"``, ``"image"`` -> ``"I"``, ``"fused"`` -> ``"IT"``."""
    return _MODALITY_CODE[modality]


def stable_id(prefix: str, *parts: Any) -> str:
    """Deterministic id from content, so re-materializing yields the same ids."""
    h = hashlib.sha1()
    for p in parts:
        if isinstance(p, bytes):
            h.update(p)
        else:
            h.update(json.dumps(p, sort_keys=True, default=str).encode())
        h.update(b"\x1f")
    return f"{prefix}-{h.hexdigest()[:16]}"


@dataclass
class Item:
    """One retrievable thing: text, an image, or both (fused).

    ``image`` may be a file path, encoded bytes or a PIL image. Validation happens here, at the
    edge, and raises :class:`InvalidItemError` naming the item.
    """

    text: str | None = None
    image: ImageLike | None = None
    id: str | None = None
    metadata: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        name = self.id or "<unnamed item>"
        if self.text is not None and not isinstance(self.text, str):
            raise InvalidItemError(f"item {name}: text must be str or None, got {type(self.text).__name__}")
        if self.text is not None and not self.text.strip():
            self.text = None
        if self.image is not None and not isinstance(self.image, (str, Path, bytes, Image.Image)):
            raise InvalidItemError(
                f"item {name}: image must be a path, bytes or PIL.Image, got {type(self.image).__name__}"
            )
        if isinstance(self.image, str) and not self.image.strip():
            self.image = None
        if self.text is None and self.image is None:
            raise InvalidItemError(f"item {name}: needs text, an image, or both (both are empty)")
        if isinstance(self.image, (str, Path)) and not Path(self.image).is_file():
            raise InvalidItemError(f"item {name}: image file not found: {self.image}")
        if self.metadata is not None and not isinstance(self.metadata, dict):
            raise InvalidItemError(f"item {name}: metadata must be a dict, got {type(self.metadata).__name__}")

    @property
    def modality(self) -> Modality:
        if self.text is not None and self.image is not None:
            return "fused"
        return "image" if self.image is not None else "text"

    def load_image(self) -> Image.Image | None:
        """The image as an RGB PIL image (EXIF orientation applied), or None for text items."""
        if self.image is None:
            return None
        from gme_data.images import open_image

        try:
            return open_image(self.image)
        except Exception as exc:  # noqa: BLE001 - re-raised with the item's name
            raise InvalidItemError(f"item {self.id or '<unnamed item>'}: unreadable image: {exc}") from exc

    def image_bytes(self) -> bytes | None:
        if self.image is None:
            return None
        if isinstance(self.image, bytes):
            return self.image
        if isinstance(self.image, (str, Path)):
            return Path(self.image).read_bytes()
        buf = io.BytesIO()
        self.image.save(buf, format="PNG")
        return buf.getvalue()

    def content_hash(self) -> str:
        """sha1 over text and image bytes: the cache key for embeddings."""
        h = hashlib.sha1()
        h.update((self.text or "").encode())
        h.update(b"\x1f")
        img = self.image_bytes()
        if img is not None:
            h.update(img)
        return h.hexdigest()

    def to_row(self, prefix: str = "") -> dict[str, Any]:
        """Flat row; images must already be paths (see :func:`gme_data.images.ImageStore.put`)."""
        if self.image is not None and not isinstance(self.image, (str, Path)):
            raise InvalidItemError(f"item {self.id}: store the image first (to_row needs a path)")
        return {
            f"{prefix}id": self.id,
            f"{prefix}text": self.text,
            f"{prefix}image": str(self.image) if self.image is not None else None,
        }

    @classmethod
    def from_row(cls, row: dict[str, Any], prefix: str = "") -> Item:
        def _get(key: str) -> Any:
            v = row.get(f"{prefix}{key}")
            return None if v is None or (isinstance(v, float) and v != v) else v

        return cls(text=_get("text"), image=_get("image"), id=_get("id"))


@dataclass
class Sample:
    """A training / evaluation sample: query, positive candidate, hard negatives."""

    query: Item
    positive: Item
    negatives: list[Item] = field(default_factory=list)
    instruction: str | None = None
    id: str | None = None
    source_id: str | None = None

    @property
    def combination(self) -> str:
        """GME's modality combination label, e.g. ``"IT->T"``."""
        return f"{modality_code(self.query.modality)}->{modality_code(self.positive.modality)}"
