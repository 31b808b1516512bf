"""``SourceSpec``: which raw data to read, how its columns map, and which shard it is."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gme_data.errors import InvalidInputError

#: The source kinds :func:`gme_data.sources.read_source` understands.
SOURCE_KINDS: tuple[str, ...] = ("jsonl", "csv", "parquet", "image_folder", "hf", "wikipedia")

#: Columns of the raw table every source produces.
RAW_COLUMNS: tuple[str, ...] = ("id", "title", "text", "image", "source", "shard", "url")


@dataclass(frozen=True)
class SourceSpec:
    """One raw source (one shard = one partition).

    ``path`` is a manifest file, an image folder, a ``save_to_disk`` folder or, for ``kind="hf"``,
    a Hugging Face hub id. Column names map the source's fields onto ``title, text, image, url, id``.
    ``require_text``: paragraphs need text (a row without it is dropped); ``None`` means the kind's
    default (True for paragraph kinds, False for image folders). ``license``: the source's licence as
    its owner states it (recorded in lineage and shown in exported data cards; ``None`` = not stated).
    """

    kind: str
    path: str | Path
    name: str | None = None
    shard: str | None = None
    split: str | None = None
    streaming: bool = False
    text_column: str = "text"
    image_column: str | None = "image"
    title_column: str | None = "title"
    url_column: str | None = "url"
    id_column: str | None = "id"
    require_text: bool | None = None
    limit: int | None = None
    license: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in SOURCE_KINDS:
            raise InvalidInputError(f"source spec: unknown kind {self.kind!r} (one of {', '.join(SOURCE_KINDS)})")
        if not str(self.path).strip():
            raise InvalidInputError(f"source spec ({self.kind}): path / hub id is empty")
        if self.limit is not None and self.limit < 0:
            raise InvalidInputError(f"source spec {self.source_name}: limit must be >= 0, got {self.limit}")

    @property
    def source_name(self) -> str:
        """The ``source`` column: ``name`` or the file stem / hub id."""
        if self.name:
            return self.name
        if self.kind == "hf" and not Path(self.path).exists():
            return str(self.path)
        p = Path(self.path)
        return p.stem if p.suffix else p.name

    @property
    def shard_name(self) -> str:
        """The ``shard`` column (the partition key): ``shard`` or the source name."""
        return self.shard or self.source_name

    @property
    def text_required(self) -> bool:
        if self.require_text is not None:
            return self.require_text
        return self.kind != "image_folder"
