"""The image pool: images (from folders, Parquet, HF datasets or the candidates table) embedded
with the configured embedder into a persisted, incrementally grown vector index for text -> image
retrieval of an entity's image (GME's fused-modal synthesis, step 4)."""

from __future__ import annotations

from gme_data.pool.pool import AddStats, ImagePool, PoolConfig, build_pool, default_pool_dir
from gme_data.pool.sources import (
    PoolEntry,
    entries_from_candidates,
    entries_from_folder,
    entries_from_hf,
    entries_from_parquet,
    entries_from_source,
    entries_from_table,
    file_sha1,
    pool_image_id,
)

__all__ = ["AddStats", "ImagePool", "PoolConfig", "PoolEntry", "build_pool", "default_pool_dir", "entries_from_candidates",
           "entries_from_folder", "entries_from_hf", "entries_from_parquet", "entries_from_source",
           "entries_from_table", "file_sha1", "pool_image_id"]
