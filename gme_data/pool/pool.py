"""A persisted, incremental pool of images for text -> image retrieval.

The pool is a directory::

    <dir>/manifest.json      embedder name, dim and settings, count, format version, timestamps
    <dir>/entries.parquet    id, image (path), caption, entity, source, content_hash (one row per image)
    <dir>/index/             the vector index (ids aligned with entries.parquet)

Images are identified by the sha1 of their file bytes. :meth:`ImagePool.add` embeds only images
whose content hash the pool does not hold yet (the same photo under another path is not embedded
twice), so growing a pool costs only the new images. The pool remembers which embedder made its
vectors: opening it with another embedder (other name, dim or settings) re-embeds every stored
image and says so in the log. Writes go to temporary files that replace the old ones, the manifest
last; a pool whose files disagree (a killed write) is rebuilt from its entries on open.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image
from pydantic import Field

from gme_data.errors import GmeDataError, InvalidInputError, InvalidItemError, SourceError
from gme_data.images import UnreadableImageError
from gme_data.lineage import StageOutput
from gme_data.pool.sources import PoolEntry, entries_from_source, file_sha1, pool_image_id
from gme_data.records import Item
from gme_data.retrieval.index import VectorIndex
from gme_data.stage_config import StageConfig

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
ENTRIES = "entries.parquet"
INDEX_DIR = "index"
ENTRY_COLUMNS = ("id", "image", "caption", "entity", "source", "content_hash")


def default_query_instruction() -> str:
    """The T->I task instruction used for text queries against the pool."""
    try:
        from gme_data.retrieval.instructions import default_instruction

        return default_instruction("T->I")
    except ImportError:  # pragma: no cover - the retrieval package ships with gme_data
        return "Find an image that matches the given text."


class PoolConfig(StageConfig):
    """How the image pool embeds and searches.

    - ``batch_size``: images per ``encode`` batch (16).
    - ``chunk_size``: images embedded between two saves, so a killed run keeps its progress (1024).
    - ``query_instruction``: instruction for text queries (role "query"); None = GME's T->I default
      ("Find an image that matches the given text.").
    - ``on_unreadable``: ``"skip"`` (log and count, the default) or ``"raise"`` for images that
      cannot be decoded.
    - ``show_progress``: tqdm bars while embedding (True).
    - ``extra_settings``: anything else that changes vectors (recorded in the manifest; a change
      triggers a rebuild like a change of embedder).
    - ``index_options``: passed to :class:`gme_data.retrieval.index.VectorIndex` (e.g.
      ``hnsw_threshold``: exact search below it, HNSW above; default 100k vectors).
    """

    batch_size: int = 16
    chunk_size: int = 1024
    query_instruction: str | None = None
    on_unreadable: str = "skip"
    show_progress: bool = True
    extra_settings: dict[str, Any] = Field(default_factory=dict)
    index_options: dict[str, Any] = Field(default_factory=dict)

    def model_post_init(self, _context: Any) -> None:
        if self.batch_size < 1 or self.chunk_size < 1:
            raise InvalidInputError(f"pool config: batch_size ({self.batch_size}) and chunk_size "
                                    f"({self.chunk_size}) must be >= 1")
        if self.on_unreadable not in ("skip", "raise"):
            raise InvalidInputError(f"pool config: on_unreadable={self.on_unreadable!r}; use 'skip' or 'raise'")

    @property
    def instruction(self) -> str:
        return self.query_instruction or default_query_instruction()


@dataclass
class AddStats:
    """What one :meth:`ImagePool.add` did."""

    seen: int = 0            # entries offered
    new: int = 0             # images whose content the pool did not hold
    embedded: int = 0        # images sent to the embedder (== new minus unreadable)
    updated: int = 0         # known images whose caption/entity/path changed (no re-embedding)
    duplicates: int = 0      # entries whose content was already in the pool (or earlier in this batch)
    unreadable: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _embedder_fingerprint(embedder: Any, config: PoolConfig) -> dict[str, Any]:
    settings = getattr(embedder, "settings", None)
    settings = json.loads(json.dumps(settings if isinstance(settings, dict) else {}, sort_keys=True, default=str))
    extra = json.loads(json.dumps(config.extra_settings, sort_keys=True, default=str))
    out = {"name": str(getattr(embedder, "name", type(embedder).__name__)), "dim": int(embedder.dim),
           "settings": settings, "extra_settings": extra}
    weights = getattr(embedder, "weights_id", None)
    if weights:  # a local folder's content hash: retrained weights in the same folder re-embed the pool
        out["weights"] = str(weights)
    return out


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True, default=str)
    os.replace(tmp, path)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _quick_check(path: str) -> str | None:
    """A header-only readability check (no pixel decode); returns the problem or None."""
    try:
        with Image.open(path) as img:
            w, h = img.size
        if w == 0 or h == 0:
            return f"empty image ({w}x{h})"
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        return f"cannot decode ({exc})"
    return None


class ImagePool:
    """Images + their embeddings under ``directory``; text -> image search.

    ``ImagePool(directory, embedder)`` opens the pool (creating an empty one if the directory has
    none) and re-embeds it if it was built by another embedder. ``add`` grows it incrementally;
    ``search`` answers text queries with (pool id, score) lists, best first.
    """

    def __init__(self, directory: str | Path, embedder: Any, config: PoolConfig | None = None):
        self.directory = Path(directory)
        self.embedder = embedder
        self.config = config or PoolConfig()
        self.fingerprint = _embedder_fingerprint(embedder, self.config)
        self.rebuilt = False
        self._entries: dict[str, PoolEntry] = {}
        self._by_hash: dict[str, str] = {}
        self._index = self._new_index()
        self.manifest: dict[str, Any] = {}
        self.directory.mkdir(parents=True, exist_ok=True)
        self._load()

    # ---- persistence ----------------------------------------------------------------------
    def _new_index(self) -> VectorIndex:
        return VectorIndex(self.fingerprint["dim"], model_name=self.fingerprint["name"], **self.config.index_options)

    @property
    def manifest_path(self) -> Path:
        return self.directory / MANIFEST

    def _load(self) -> None:
        if not self.manifest_path.is_file():
            if (self.directory / ENTRIES).is_file():
                self._load_entries()
                log.warning("image pool %s: manifest missing; rebuilding the index from %d stored entries",
                            self.directory, len(self._entries))
                self._rebuild()
            return
        try:
            manifest = json.loads(self.manifest_path.read_text())
        except (OSError, ValueError) as exc:
            raise SourceError(f"image pool {self.directory}: unreadable manifest ({exc})") from exc
        self.manifest = manifest
        self._load_entries()
        old = manifest.get("embedder", {})
        if manifest.get("format_version") != FORMAT_VERSION or old != self.fingerprint:
            log.warning(
                "image pool %s was built with embedder %r (dim %s, settings %s); the configured embedder is "
                "%r (dim %s, settings %s): rebuilding, re-embedding %d images",
                self.directory, old.get("name"), old.get("dim"), old.get("settings"),
                self.fingerprint["name"], self.fingerprint["dim"], self.fingerprint["settings"],
                len(self._entries))
            self._rebuild()
            return
        try:
            self._index = VectorIndex.load(self.directory / INDEX_DIR, expected_dim=self.fingerprint["dim"])
        except (OSError, ValueError, RuntimeError, GmeDataError) as exc:
            log.warning("image pool %s: index unreadable (%s); rebuilding from %d entries", self.directory, exc,
                        len(self._entries))
            self._rebuild()
            return
        if (self._index.ids != list(self._entries) or self._index.dim != self.fingerprint["dim"]
                or manifest.get("n_images") != len(self._entries)):
            log.warning("image pool %s: index (%d vectors) and entries (%d) disagree (interrupted write?); "
                        "rebuilding", self.directory, len(self._index), len(self._entries))
            self._rebuild()

    def _load_entries(self) -> None:
        path = self.directory / ENTRIES
        self._entries.clear()
        self._by_hash.clear()
        if not path.is_file():
            return
        try:
            df = pd.read_parquet(path)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises many types
            raise SourceError(f"image pool {self.directory}: unreadable {ENTRIES} ({exc})") from exc
        for row in df.to_dict("records"):
            e = PoolEntry(**{k: (None if isinstance(row.get(k), float) else row.get(k)) for k in ENTRY_COLUMNS})
            self._entries[e.id] = e
            self._by_hash[e.content_hash] = e.id

    def _rebuild(self) -> None:
        """Re-embed every stored entry whose file still exists (after an embedder change or damage)."""
        entries = list(self._entries.values())
        self._entries.clear()
        self._by_hash.clear()
        self._index = self._new_index()
        missing = [e for e in entries if not Path(e.image).is_file()]
        if missing:
            log.warning("image pool %s: %d stored images no longer exist and are left out (e.g. %s)",
                        self.directory, len(missing), missing[0].image)
        self.rebuilt = True
        self._embed_and_add([e for e in entries if Path(e.image).is_file()], AddStats())
        self.save()

    def save(self) -> None:
        """Write index, entries and manifest (each atomically, the manifest last)."""
        self._index.save(self.directory / INDEX_DIR)
        df = pd.DataFrame([e.to_row() for e in self._entries.values()], columns=list(ENTRY_COLUMNS))
        fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".parquet.tmp")
        os.close(fd)
        df.to_parquet(tmp, index=False)
        os.replace(tmp, self.directory / ENTRIES)
        now = _now()
        self.manifest = {
            "format_version": FORMAT_VERSION,
            "embedder": self.fingerprint,
            "n_images": len(self._entries),
            "index": self._index.kind,
            "query_instruction": self.config.instruction,
            "created_at": self.manifest.get("created_at", now),
            "updated_at": now,
        }
        _write_json_atomic(self.manifest_path, self.manifest)

    # ---- growing ----------------------------------------------------------------------------
    def add(self, source: Any, **source_options: Any) -> AddStats:
        """Add images from ``source`` (PoolEntry objects, a folder, Parquet, ``"hf:<id>"``, an HF
        dataset, a candidates DataFrame; see :func:`gme_data.pool.sources.entries_from_source`).

        Only images whose content hash is new are embedded; a known image whose caption/entity
        changed is updated without embedding. Saves after every ``chunk_size`` new images.
        """
        stats = AddStats()
        fresh: list[PoolEntry] = []
        hashes_in_batch: set[str] = set()
        entries: Iterable[PoolEntry] = (
            source if isinstance(source, list) and all(isinstance(e, PoolEntry) for e in source)
            else entries_from_source(source, **source_options)
        )
        for entry in entries:
            stats.seen += 1
            try:
                entry.resolve()
            except SourceError as exc:
                if self.config.on_unreadable == "raise":
                    raise
                stats.unreadable.append(entry.image)
                log.warning("image pool: skipping %s", exc)
                continue
            known_id = self._by_hash.get(entry.content_hash)
            if known_id is not None:
                stats.duplicates += 1
                known = self._entries[known_id]
                changed = False
                for attr in ("caption", "entity"):
                    if getattr(entry, attr) and getattr(entry, attr) != getattr(known, attr):
                        setattr(known, attr, getattr(entry, attr))
                        changed = True
                if not Path(known.image).is_file():
                    known.image = entry.image
                    changed = True
                stats.updated += changed
                continue
            if entry.content_hash in hashes_in_batch:
                stats.duplicates += 1
                continue
            hashes_in_batch.add(entry.content_hash)
            fresh.append(entry)
        stats.new = len(fresh)
        self._embed_and_add(fresh, stats)
        if stats.embedded or stats.updated or not self.manifest_path.is_file():
            self.save()
        log.info("image pool %s: %d offered, %d new, %d embedded, %d already present, %d unreadable; %d images",
                 self.directory, stats.seen, stats.new, stats.embedded, stats.duplicates, len(stats.unreadable),
                 len(self))
        return stats

    def _embed_and_add(self, entries: Sequence[PoolEntry], stats: AddStats) -> None:
        size = self.config.chunk_size
        for start in range(0, len(entries), size):
            chunk = []
            for e in entries[start:start + size]:
                problem = _quick_check(e.image)
                if problem is None:
                    chunk.append(e)
                    continue
                if self.config.on_unreadable == "raise":
                    raise SourceError(f"pool image {e.image}: {problem}")
                log.warning("image pool: skipping unreadable image %s: %s", e.image, problem)
                stats.unreadable.append(e.image)
            if not chunk:
                continue
            kept, vectors = self._encode_images(chunk, stats)
            if not kept:
                continue
            self._index.add([e.id for e in kept], vectors)
            for e in kept:
                self._entries[e.id] = e
                self._by_hash[e.content_hash] = e.id
            stats.embedded += len(kept)
            if start + size < len(entries):
                self.save()

    def _encode(self, entries: Sequence[PoolEntry]) -> np.ndarray:
        items = [Item(image=e.image, id=e.id) for e in entries]
        vecs = np.asarray(self.embedder.encode(items, role="candidate", batch_size=self.config.batch_size,
                                               show_progress=self.config.show_progress), dtype=np.float32)
        if vecs.shape != (len(entries), self.fingerprint["dim"]):
            raise RuntimeError(f"embedder {self.fingerprint['name']} returned {vecs.shape}, expected "
                               f"{(len(entries), self.fingerprint['dim'])}")
        return vecs

    def _encode_images(self, chunk: list[PoolEntry], stats: AddStats) -> tuple[list[PoolEntry], np.ndarray]:
        try:
            return chunk, self._encode(chunk)
        except (InvalidItemError, UnreadableImageError) as exc:
            if self.config.on_unreadable == "raise":
                raise
            log.warning("image pool: a batch failed (%s); embedding its images one by one", exc)
        kept, vecs = [], []
        for e in chunk:
            try:
                vecs.append(self._encode([e])[0])
                kept.append(e)
            except (InvalidItemError, UnreadableImageError) as exc:
                log.warning("image pool: skipping unreadable image %s: %s", e.image, exc)
                stats.unreadable.append(e.image)
        return kept, (np.stack(vecs) if vecs else np.zeros((0, self.fingerprint["dim"]), np.float32))

    # ---- reading -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, pool_id: object) -> bool:
        return pool_id in self._entries

    def entry(self, pool_id: str) -> PoolEntry:
        try:
            return self._entries[pool_id]
        except KeyError:
            raise InvalidInputError(f"image pool {self.directory}: no image with id {pool_id!r}") from None

    @property
    def entries(self) -> pd.DataFrame:
        return pd.DataFrame([e.to_row() for e in self._entries.values()], columns=list(ENTRY_COLUMNS))

    def id_for_image(self, path: str | Path | None) -> str | None:
        """The pool id of an image file if the pool holds the same content, else None."""
        if path is None or not Path(path).is_file():
            return None
        return self._by_hash.get(file_sha1(path))

    def encode_queries(self, texts: Sequence[str], instruction: str | None = None) -> np.ndarray:
        """Text queries -> vectors (role query, the pool's T->I instruction unless given)."""
        items = [Item(text=t, id=f"q{i}") for i, t in enumerate(texts)]
        return np.asarray(self.embedder.encode(items, role="query", instruction=instruction or
                                               self.config.instruction, batch_size=self.config.batch_size,
                                               show_progress=False), dtype=np.float32)

    def search(self, texts: Sequence[str], k: int = 5,
               instruction: str | None = None) -> list[list[tuple[str, float]]]:
        """Top-``k`` pool images for each text: ``[(pool_id, score), ...]``, best first."""
        if k < 1:
            raise InvalidInputError(f"image pool search: k must be >= 1, got {k}")
        if not texts:
            return []
        if not len(self):
            return [[] for _ in texts]
        hits = self._index.search(self.encode_queries(texts, instruction), k)
        return [[(h.id, float(h.score)) for h in row] for row in hits]

    def score_images(self, texts: Sequence[str], images: Sequence[str],
                     instruction: str | None = None) -> np.ndarray:
        """Aligned text-image scores (``texts[i]`` vs ``images[i]``) with the pool's embedder (images
        role candidate, texts role query); each distinct image is embedded once (give the embedder a
        ``cache_dir`` to make repeated scoring free)."""
        if len(texts) != len(images):
            raise InvalidInputError(f"score_images: {len(texts)} texts but {len(images)} images")
        if not texts:
            return np.zeros(0, np.float32)
        q = self.encode_queries(texts, instruction)
        uniq = sorted(set(images))
        vecs = np.asarray(self.embedder.encode([Item(image=p, id=p) for p in uniq], role="candidate",
                                               batch_size=self.config.batch_size, show_progress=False),
                          dtype=np.float32)
        pos = {p: j for j, p in enumerate(uniq)}
        return np.einsum("ij,ij->i", q, vecs[[pos[p] for p in images]])

    def lineage(self) -> StageOutput:
        """One kept ``pool_image`` record per image (so fused samples can point at their image)."""
        out = StageOutput()
        for e in self._entries.values():
            out.keep(e.id, "pool_image", stage="image_pool", image=e.image, caption=e.caption, entity=e.entity,
                     source=e.source, content_hash=e.content_hash, embedder=self.fingerprint["name"])
        return out

    def __repr__(self) -> str:
        return f"ImagePool({str(self.directory)!r}, n={len(self)}, embedder={self.fingerprint['name']!r})"


def default_pool_dir() -> Path:
    """``<GME_DATA_HOME>/image_pool``: where the pipeline keeps its pool unless configured otherwise."""
    from gme_data.settings import home

    return home() / "image_pool"


def build_pool(directory: str | Path, embedder: Any, sources: Iterable[Any] | Any = (),
               config: PoolConfig | None = None) -> tuple[ImagePool, AddStats]:
    """Open (or create) the pool at ``directory`` and add ``sources``; returns the pool and what was added."""
    pool = ImagePool(directory, embedder, config)
    srcs = sources if isinstance(sources, (list, tuple)) else [sources]
    total = AddStats()
    for src in srcs:
        s = pool.add(src)
        for name in ("seen", "new", "embedded", "updated", "duplicates"):
            setattr(total, name, getattr(total, name) + getattr(s, name))
        total.unreadable.extend(s.unreadable)
    if not pool.manifest_path.is_file():
        pool.save()
    return pool, total


__all__ = ["AddStats", "ImagePool", "PoolConfig", "PoolEntry", "build_pool", "default_pool_dir", "file_sha1",
           "pool_image_id"]
