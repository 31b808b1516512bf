"""Examples per drop reason: what a dropped row looked like and the score that decided it.

For each reason, up to ``limit`` dropped records with their query, an image thumbnail (a small JPEG
written beside the report), the positive, the deciding score and the lineage trace query that
explains the record. Text comes from the record's lineage payload, else from the input row it was
judged from (by id, or by its parent's id).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gme_data.errors import InvalidInputError
from gme_data.lineage import DROPPED, trace_sql
from quality.stage_view import StageView

QUERY_KEYS = ("query_text", "query", "text", "title")
IMAGE_KEYS = ("query_image", "image_path", "image", "pos_image")
POSITIVE_KEYS = ("pos_text", "answer", "pos_id")
THUMB_PX = 96
DEFAULT_LIMIT = 3


def example_limit() -> int:
    """Examples per reason: ``GME_DATA_REPORT_EXAMPLES`` (0..50), default 3."""
    raw = os.environ.get("GME_DATA_REPORT_EXAMPLES", "").strip()
    if not raw:
        return DEFAULT_LIMIT
    if not raw.isdigit() or int(raw) > 50:
        raise InvalidInputError(f"GME_DATA_REPORT_EXAMPLES={raw!r} must be a whole number from 0 to 50")
    return int(raw)


@dataclass
class DropExample:
    """One dropped record as the report shows it."""

    reason: str
    record_id: str
    query: str | None
    thumbnail: str | None  # path relative to the report
    image: str | None
    positive: str | None
    positive_thumbnail: str | None
    score: float | None
    trace: str


def _first(row: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for k in keys:
        v = row.get(k)
        if v is not None and not (isinstance(v, float) and v != v) and str(v).strip():
            return v
    return None


def _thumbnail(image: Any, folder: Path, name: str) -> str | None:
    """A small JPEG of a local image file, or None when it is not a readable image."""
    if image is None:
        return None
    path = Path(str(image))
    if not path.is_file():
        return None
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if im.width * im.height > 80_000_000:
                return None  # never decode a bomb for a thumbnail
            im = im.convert("RGB")
            im.thumbnail((THUMB_PX, THUMB_PX))
            folder.mkdir(parents=True, exist_ok=True)
            im.save(folder / f"{name}.jpg", format="JPEG", quality=80)
    except (OSError, UnidentifiedImageError, ValueError):
        return None
    return f"{folder.name}/{name}.jpg"


def drop_examples(view: StageView, folder: Path, limit: int | None = None) -> dict[str, list[DropExample]]:
    """Up to ``limit`` examples of each drop reason, most frequent reason first."""
    limit = example_limit() if limit is None else limit
    out: dict[str, list[DropExample]] = {reason: [] for reason in view.drop_counts()}
    for rec in view.output.records:
        if rec.status != DROPPED:
            continue
        reason = rec.reason or "unspecified"
        bucket = out.setdefault(reason, [])
        if len(bucket) >= limit:
            continue
        row = {**view.input_row(rec.record_id), **{k: v for k, v in rec.payload.items() if v is not None}}
        image = _first(row, IMAGE_KEYS)
        n = sum(len(b) for b in out.values())
        pos_image = _first(row, ("pos_image",))
        bucket.append(DropExample(
            reason=reason, record_id=rec.record_id, query=_text(_first(row, QUERY_KEYS)),
            thumbnail=_thumbnail(image, folder, f"example-{n}"), image=None if image is None else str(image),
            positive=_text(_first(row, POSITIVE_KEYS)),
            positive_thumbnail=None if pos_image == image else _thumbnail(pos_image, folder, f"positive-{n}"),
            score=rec.score, trace=trace_sql(rec.record_id)))
    return out


def _text(v: Any, max_chars: int = 240) -> str | None:
    if v is None:
        return None
    s = " ".join(str(v).split())
    return s if len(s) <= max_chars else s[: max_chars - 3] + "..."
