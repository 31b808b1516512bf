"""Where gme_data keeps its state: one home folder (``GME_DATA_HOME``, default ``./var``)."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """The workbench's state folder; created on first use."""
    root = Path(os.environ.get("GME_DATA_HOME", "var")).resolve()
    root.mkdir(parents=True, exist_ok=True)
    return root


def lineage_path() -> Path:
    return Path(os.environ.get("GME_DATA_LINEAGE_DB", str(home() / "lineage.duckdb")))


def image_store_dir() -> Path:
    return home() / "images"


def reports_dir() -> Path:
    return home() / "reports"


def cache_dir() -> Path:
    return home() / "cache"
