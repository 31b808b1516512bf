"""Wikipedia-style articles flattened to paragraph rows.

Layout (one article per JSONL line)::

    {"title": ..., "url": ..., "paragraphs": [{"text": ..., "images": [{"path": ..., "caption": ...}]}]}

Each paragraph becomes one row paired with its first image (or none); image paths are relative to
the manifest's folder.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gme_data.sources.manifests import require_file
from gme_data.sources.rows import RawProblem, RawRow
from gme_data.sources.spec import SourceSpec


def _first_image(images: Any) -> tuple[Any, str | None, str | None]:
    """(image value, caption, problem) for a paragraph's ``images`` list."""
    if images is None or images == []:
        return None, None, None
    if not isinstance(images, list):
        return None, None, f"'images' must be a list, got {type(images).__name__}"
    first = images[0]
    if isinstance(first, dict):
        caption = first.get("caption")
        return first.get("path"), caption if isinstance(caption, str) else None, None
    return first, None, None


def _paragraph_rows(article: dict[str, Any], where: str, base: Path,
                    path: Path) -> Iterator[RawRow | RawProblem]:
    paragraphs = article.get("paragraphs")
    if "paragraphs" not in article:
        yield RawProblem(where, ["article", article], "missing_field", "paragraphs", "article has no 'paragraphs'")
        return
    if not isinstance(paragraphs, list):
        yield RawProblem(where, ["article", article], "wrong_type", "paragraphs",
                         f"'paragraphs' must be a list, got {type(paragraphs).__name__}")
        return
    for index, paragraph in enumerate(paragraphs):
        p_where = f"{where} paragraph {index}"
        if not isinstance(paragraph, dict):
            yield RawProblem(p_where, ["paragraph", article.get("title"), paragraph], "wrong_type", "paragraph",
                             f"a paragraph must be an object, got {type(paragraph).__name__}")
            continue
        image, caption, problem = _first_image(paragraph.get("images"))
        if problem:
            yield RawProblem(p_where, ["paragraph", article.get("title"), paragraph], "wrong_type", "images",
                             problem)
            continue
        fields = {"title": article.get("title"), "url": article.get("url"), "image": image}
        if "text" in paragraph:
            fields["text"] = paragraph["text"]
        extra = {"file": str(path), "paragraph": index}
        if caption:
            extra["image_caption"] = caption
        yield RawRow(p_where, fields, base=base, extra=extra)


def iter_wikipedia(spec: SourceSpec) -> Iterator[RawRow | RawProblem]:
    """Paragraph rows of every article line; broken lines are reported and skipped."""
    path = require_file(Path(spec.path), "Wikipedia-style manifest")
    with path.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{path.name} line {line_no}"
            try:
                article = json.loads(line)
            except json.JSONDecodeError as exc:
                yield RawProblem(where, ["line", line.strip()], "malformed_row", "row", f"invalid JSON ({exc})")
                continue
            except RecursionError:  # e.g. 100,000 nested '[': this line is dropped, the shard goes on
                yield RawProblem(where, ["line", line.strip()], "malformed_row", "row", "JSON nested too deeply")
                continue
            if not isinstance(article, dict):
                yield RawProblem(where, ["line", line.strip()], "wrong_type", "row",
                                 f"expected a JSON object, got {type(article).__name__}")
                continue
            yield from _paragraph_rows(article, where, path.parent, path)
