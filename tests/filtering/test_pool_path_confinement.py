"""Finding 8 of issue 14 for the image pool: folder and table paths stay inside their folder."""

from __future__ import annotations

import logging

import pandas as pd
import pytest
from PIL import Image

from gme_data.errors import InvalidInputError
from gme_data.images import ImageStore
from gme_data.pool import entries_from_folder
from gme_data.pool.sources import entries_from_parquet

SECRET = "password=hunter2"


@pytest.fixture
def layout(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET)
    Image.new("RGB", (32, 24), "blue").save(outside / "blue.png")
    folder = tmp_path / "pool-src"
    folder.mkdir()
    Image.new("RGB", (32, 24), "red").save(folder / "red.png")
    return folder, outside


def test_pool_folder_skips_symlinked_images_and_never_reads_linked_captions(layout, caplog):
    folder, outside = layout
    (folder / "red.txt").symlink_to(outside / "secret.txt")
    (folder / "blue.png").symlink_to(outside / "blue.png")
    with caplog.at_level(logging.WARNING, logger="gme_data.pool.sources"):
        entries = list(entries_from_folder(folder))
    assert [e.image for e in entries] == [str(folder / "red.png")]
    assert entries[0].caption is None and SECRET not in caplog.text
    assert "symlink_not_followed" in caplog.text and "blue.png" in caplog.text


def test_pool_parquet_image_path_outside_its_folder_is_a_named_error(layout, tmp_path):
    folder, outside = layout
    pd.DataFrame({"image": ["red.png", "../outside/blue.png"], "caption": ["red", "blue"]}).to_parquet(
        folder / "t.parquet")
    entries = entries_from_parquet(folder / "t.parquet", image_store=ImageStore(tmp_path / "store"))
    assert next(entries).image == str(folder / "red.png")
    with pytest.raises(InvalidInputError, match=r"row 1 \(image\): image path '../outside/blue.png' leads "
                                                r"outside .*\[path_outside_root\]"):
        next(entries)
