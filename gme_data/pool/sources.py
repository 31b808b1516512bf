"""Where pool images come from: folders, Parquet files, Hugging Face datasets, tables.

Every reader yields :class:`PoolEntry` objects whose ``image`` is a readable file path. Images
that arrive as bytes or PIL images (Parquet image columns, HF datasets) are written into the
content-addressed :class:`~gme_data.images.ImageStore` first, so the pool always points at files.

Captions and entity names are optional text that travels with the entry (shown in reports and
the UI, used by nothing else): retrieval is text -> image, on the image alone.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from PIL import Image

from gme_data.errors import InvalidInputError, SourceError
from gme_data.images import ImageStore, UnreadableImageError, open_image
from gme_data.records import stable_id
from gme_data.settings import image_store_dir
from gme_data.sources.policy import PathRejected, ReadPolicy
from gme_data.tables import text_or_none

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
#: Column names tried, in order, when a table or metadata file names no caption / entity column.
CAPTION_KEYS = ("caption", "text", "title", "alt", "description")
ENTITY_KEYS = ("entity", "title", "label", "name")

_HASH_CACHE: dict[tuple[str, int, int], str] = {}


def file_sha1(path: str | Path) -> str:
    """sha1 of a file's bytes (cached by path, size and mtime): the pool's content key."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    digest = _HASH_CACHE.get(key)
    if digest is None:
        h = hashlib.sha1()
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        digest = h.hexdigest()
        _HASH_CACHE[key] = digest
    return digest


def pool_image_id(content_hash: str) -> str:
    """The pool id of an image with this content hash (same bytes -> same id, anywhere)."""
    return stable_id("poolimg", content_hash)


@dataclass
class PoolEntry:
    """One image of the pool: ``id`` (from the content hash), file path, optional caption/entity text."""

    image: str
    caption: str | None = None
    entity: str | None = None
    source: str | None = None
    content_hash: str | None = None
    id: str | None = None

    def __post_init__(self) -> None:
        self.image = str(self.image)
        self.caption = text_or_none(self.caption)
        self.entity = text_or_none(self.entity)

    def resolve(self) -> PoolEntry:
        """Fill ``content_hash`` and ``id`` from the file (raises :class:`SourceError` if it is missing)."""
        if self.content_hash is None:
            try:
                self.content_hash = file_sha1(self.image)
            except OSError as exc:
                raise SourceError(f"pool image {self.image}: cannot read ({exc})") from exc
        if self.id is None:
            self.id = pool_image_id(self.content_hash)
        return self

    @property
    def text(self) -> str | None:
        """The entry's describing text: entity, else caption."""
        return self.entity or self.caption

    def to_row(self) -> dict[str, Any]:
        return asdict(self)


def _pick(row: Mapping[str, Any], explicit: str | None, keys: tuple[str, ...]) -> str | None:
    if explicit is not None:
        return text_or_none(row.get(explicit))
    for k in keys:
        v = text_or_none(row.get(k))
        if v is not None:
            return v
    return None


def _store_image(value: Any, store: ImageStore, where: str, base: Path | None) -> str:
    """A file path for an image value (path / bytes / PIL / HF ``{"bytes", "path"}`` dict)."""
    if isinstance(value, Mapping):
        if value.get("bytes") is not None:
            value = value["bytes"]
        elif text_or_none(value.get("path")) is not None:
            value = value["path"]
        else:
            raise InvalidInputError(f"{where}: image dict has neither 'bytes' nor 'path'")
    if isinstance(value, (str, Path)):
        if base is not None:  # a path read from a file: confined to that file's folder (see ReadPolicy)
            try:
                path = ReadPolicy.from_env().confine(value, base, what="image")
            except PathRejected as exc:
                raise InvalidInputError(f"{where}: {exc} [{exc.reason}]") from exc
        else:
            path = Path(str(value)).expanduser()
        if not path.is_file():
            raise InvalidInputError(f"{where}: image file not found: {path}")
        return str(path)
    if isinstance(value, (bytes, bytearray, memoryview, Image.Image)):
        src = bytes(value) if not isinstance(value, Image.Image) else value
        try:
            img = open_image(src)
        except UnreadableImageError as exc:
            raise InvalidInputError(f"{where}: {exc}") from exc
        return str(store.put(img))
    raise InvalidInputError(f"{where}: image must be a path, bytes or an image, got {type(value).__name__}")


def _read_metadata(root: Path) -> dict[str, dict[str, Any]]:
    """Per-file captions of an image folder: ``metadata.jsonl`` / ``metadata.csv`` (HF imagefolder
    layout, a ``file_name`` column) or ``captions.jsonl`` / ``captions.csv``."""
    out: dict[str, dict[str, Any]] = {}
    for name in ("metadata.jsonl", "captions.jsonl", "metadata.csv", "captions.csv"):
        path = root / name
        if not path.is_file():
            continue
        try:
            if name.endswith(".jsonl"):
                rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
            else:
                rows = pd.read_csv(path).to_dict("records")
        except (ValueError, OSError) as exc:
            raise SourceError(f"pool metadata {path}: cannot parse ({exc})") from exc
        for i, row in enumerate(rows):
            fname = text_or_none(row.get("file_name") or row.get("file") or row.get("image"))
            if fname is None:
                raise SourceError(f"pool metadata {path} row {i + 1}: needs a 'file_name' column")
            out[Path(fname).as_posix()] = row
    return out


def entries_from_folder(root: str | Path, source: str | None = None) -> Iterator[PoolEntry]:
    """Image files under ``root`` (recursive, sorted). Caption from ``<stem>.txt`` beside the file
    or a ``metadata.jsonl`` / ``captions.jsonl`` (``file_name`` + ``caption``/``text``/``entity``)."""
    root = Path(root)
    if not root.is_dir():
        raise SourceError(f"pool folder not found: {root}")
    meta = _read_metadata(root)
    policy = ReadPolicy.from_env()
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    for path in files:
        rel = path.relative_to(root).as_posix()
        try:  # a symlinked image (or one that leads out of the folder) is skipped, with its reason logged
            policy.confine(rel, root, what="image")
        except PathRejected as exc:
            log.warning("pool folder %s: skipping %s [%s]", root, exc, exc.reason)
            continue
        row = dict(meta.get(rel, {}))
        sidecar = path.with_suffix(".txt")
        if "caption" not in row and (sidecar.is_file() or sidecar.is_symlink()):
            try:
                sidecar = policy.confine(sidecar.relative_to(root), root, what="caption")
                with open(sidecar, encoding="utf-8", errors="replace") as fh:
                    row["caption"] = fh.read(policy.max_text_chars)
            except PathRejected as exc:
                log.warning("pool folder %s: caption not read: %s [%s]", root, exc, exc.reason)
        yield PoolEntry(image=str(path), caption=_pick(row, None, CAPTION_KEYS),
                        entity=_pick(row, None, ("entity", "label", "name")), source=source or str(root))


def entries_from_table(table: pd.DataFrame | Iterable[Mapping[str, Any]], image_column: str = "image",
                       caption_column: str | None = None, entity_column: str | None = None,
                       source: str | None = None, base: str | Path | None = None,
                       image_store: ImageStore | None = None) -> Iterator[PoolEntry]:
    """Rows of a table (DataFrame or dicts) with an image column; rows without an image are skipped.

    The image may be a path (relative ones resolve against ``base``), bytes, a PIL image or an HF
    ``{"bytes", "path"}`` dict. Bad images raise :class:`InvalidInputError` naming the row.
    """
    rows = table.to_dict("records") if isinstance(table, pd.DataFrame) else table
    if isinstance(table, pd.DataFrame) and image_column not in table.columns:
        raise InvalidInputError(f"pool table {source or ''}: no image column {image_column!r} "
                                f"(columns: {list(table.columns)})")
    store = image_store or ImageStore(image_store_dir())
    base_path = Path(base) if base is not None else None
    for i, row in enumerate(rows):
        value = row.get(image_column)
        if value is None or (isinstance(value, float) and math.isnan(value)) or (isinstance(value, str)
                                                                                  and not value.strip()):
            continue
        where = f"pool table {source or '<table>'} row {i} ({image_column})"
        yield PoolEntry(image=_store_image(value, store, where, base_path),
                        caption=_pick(row, caption_column, CAPTION_KEYS),
                        entity=_pick(row, entity_column, ENTITY_KEYS), source=source)


def entries_from_candidates(candidates: pd.DataFrame, source: str = "candidates") -> Iterator[PoolEntry]:
    """The images of a ``candidates`` table (the bundled sample's images offline); entity = title."""
    for row in candidates.to_dict("records"):
        image = text_or_none(row.get("image"))
        if image is None:
            continue
        yield PoolEntry(image=image, caption=text_or_none(row.get("title")), entity=text_or_none(row.get("title")),
                        source=f"{source}:{row.get('id')}")


def entries_from_parquet(path: str | Path, image_column: str = "image", caption_column: str | None = None,
                         entity_column: str | None = None,
                         image_store: ImageStore | None = None) -> Iterator[PoolEntry]:
    """A Parquet file (or a folder of them) with an image column (paths, bytes, or HF image dicts)."""
    path = Path(path)
    files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
    if not files or not all(f.is_file() for f in files):
        raise SourceError(f"pool parquet not found: {path}")
    for f in files:
        try:
            table = pd.read_parquet(f)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises many types
            raise SourceError(f"pool parquet {f}: cannot read ({exc})") from exc
        yield from entries_from_table(table, image_column, caption_column, entity_column, source=str(f),
                                      base=f.parent, image_store=image_store)


def entries_from_hf(dataset: Any, split: str | None = "train", image_column: str = "image",
                    caption_column: str | None = None, entity_column: str | None = None,
                    limit: int | None = None, image_store: ImageStore | None = None) -> Iterator[PoolEntry]:
    """A Hugging Face dataset: a ``Dataset`` object, a ``save_to_disk`` folder, or a hub id
    (the hub needs network). Images are stored into the image store."""
    name = dataset if isinstance(dataset, str) else type(dataset).__name__
    if isinstance(dataset, (str, Path)):
        import datasets as hf

        try:
            if Path(dataset).is_dir():
                dataset = hf.load_from_disk(str(dataset))
            else:
                dataset = hf.load_dataset(str(dataset), split=split)
        except Exception as exc:  # noqa: BLE001 - datasets raises many types
            raise SourceError(f"pool HF dataset {name}: cannot load ({exc})") from exc
    if isinstance(dataset, Mapping) or type(dataset).__name__ == "DatasetDict":
        if split not in dataset:
            raise SourceError(f"pool HF dataset {name}: no split {split!r} (has {list(dataset.keys())})")
        dataset = dataset[split]
    rows: Iterable[Mapping[str, Any]] = dataset
    if limit is not None:
        rows = (r for i, r in zip(range(limit), dataset, strict=False))
    yield from entries_from_table(rows, image_column, caption_column, entity_column, source=f"hf:{name}",
                                  image_store=image_store)


def entries_from_source(source: Any, **options: Any) -> Iterator[PoolEntry]:
    """Dispatch on what ``source`` is: PoolEntry list, DataFrame (candidates or any table with an image
    column), a folder, a ``.parquet`` file, ``"hf:<id>"`` or an HF ``Dataset`` object."""
    if isinstance(source, PoolEntry):
        yield source
        return
    if isinstance(source, pd.DataFrame):
        if {"id", "title", "text", "image"} <= set(source.columns) and not options:
            yield from entries_from_candidates(source)
        else:
            yield from entries_from_table(source, **options)
        return
    if isinstance(source, str) and source.startswith("hf:"):
        yield from entries_from_hf(source[3:], **options)
        return
    if isinstance(source, (str, Path)):
        p = Path(source)
        if p.is_dir() and any(p.glob("*.parquet")) and not any(
                f.suffix.lower() in IMAGE_SUFFIXES for f in p.iterdir()):
            yield from entries_from_parquet(p, **options)
        elif p.is_dir() and ((p / "dataset_info.json").is_file() or (p / "dataset_dict.json").is_file()):
            yield from entries_from_hf(str(p), **options)
        elif p.is_dir():
            yield from entries_from_folder(p)
        elif p.suffix == ".parquet":
            yield from entries_from_parquet(p, **options)
        else:
            raise SourceError(f"pool source {source}: not a folder, a .parquet file or 'hf:<dataset>'")
        return
    if hasattr(source, "column_names"):
        yield from entries_from_hf(source, **options)
        return
    if isinstance(source, Iterable):
        for s in source:
            yield from entries_from_source(s, **options)
        return
    raise SourceError(f"pool source of type {type(source).__name__} is not supported")
