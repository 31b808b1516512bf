"""Which lineage store a process writes: the DuckDB file or per-step Parquet files.

Resolved at use, so Celery workers on other machines follow their own environment:

* backend: the given value, else ``$GME_DATA_LINEAGE_BACKEND``, else ``duckdb``;
* DuckDB file: the given path, else ``$GME_DATA_LINEAGE_DB``, else ``<GME_DATA_HOME>/lineage.duckdb``;
* Parquet root: the given URL, else ``$GME_DATA_LINEAGE_URL``, else
  ``<$GME_DATA_STORAGE_URL or <GME_DATA_HOME>/storage>/_lineage`` (next to the asset shards).
"""

from __future__ import annotations

import os

from gme_data import settings
from gme_data.errors import InvalidInputError
from gme_data.lineage import LineageStore
from gme_data.lineage_parquet import ParquetLineageStore

BACKENDS = ("duckdb", "parquet")


def lineage_backend(backend: str = "") -> str:
    """``backend``, else ``$GME_DATA_LINEAGE_BACKEND``, else ``duckdb`` (validated)."""
    name = (backend or os.environ.get("GME_DATA_LINEAGE_BACKEND") or "duckdb").strip().lower()
    if name not in BACKENDS:
        raise InvalidInputError(f"lineage backend must be one of {BACKENDS}, got {name!r}")
    return name


def parquet_lineage_url(url: str = "") -> str:
    """Where Parquet lineage lives: ``url``, ``$GME_DATA_LINEAGE_URL`` or ``<storage URL>/_lineage``."""
    if url or os.environ.get("GME_DATA_LINEAGE_URL"):
        return url or os.environ["GME_DATA_LINEAGE_URL"]
    storage = os.environ.get("GME_DATA_STORAGE_URL") or str(settings.home() / "storage")
    return storage.rstrip("/") + "/_lineage"


def open_lineage_store(backend: str = "", path: str = "", url: str = "",
                       lock_timeout_s: float = 120.0) -> LineageStore | ParquetLineageStore:
    """The store this process should write and read lineage through."""
    if lineage_backend(backend) == "parquet":
        return ParquetLineageStore(parquet_lineage_url(url))
    return LineageStore(path or settings.lineage_path(), lock_timeout_s=lock_timeout_s)
