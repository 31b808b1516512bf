"""Fixtures for source tests: a temporary image store and real sample photos written to disk."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from source_photos import photo

from gme_data.images import ImageStore

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "store")


@pytest.fixture
def photos(tmp_path: Path) -> dict[str, Path]:
    """cat / coffee / rocket photos saved as PNG under tmp_path/img."""
    folder = tmp_path / "img"
    folder.mkdir()
    out = {}
    for key, name in (("cat", "chelsea"), ("coffee", "coffee"), ("rocket", "rocket")):
        out[key] = folder / f"{key}.png"
        photo(name).save(out[key])
    return out
