"""Finding 10 of issue 14 (decodes): a large image is decoded once, not again for every row, re-read
and stage. Decodes are counted by wrapping Pillow's real ``ImageFile.load`` (it still decodes)."""

from __future__ import annotations

import json

import imagehash
import numpy as np
import pytest
from PIL import Image, ImageFile

import gme_data.file_hashes as file_hashes
import gme_data.filtering.dedup as filtering_dedup
import gme_data.images as images
from gme_data.candidates.dedup import near_duplicate_images, phash_int
from gme_data.images import ImageStore, UnreadableImageError, open_image
from gme_data.sources import SourceSpec, read_source

SIZE = (1200, 900)


@pytest.fixture
def decodes(monkeypatch, tmp_path):
    """The sizes of every image Pillow decodes while the test runs (fresh cache home)."""
    monkeypatch.setenv("GME_DATA_HOME", str(tmp_path / "home"))
    seen: list[tuple[int, int]] = []
    real_load = ImageFile.ImageFile.load

    def counting_load(self):
        if getattr(self, "_im", None) is None:   # pixels not decoded yet: this call decodes
            seen.append(self.size)
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", counting_load)
    return seen


def _big_image(path) -> None:
    x = np.linspace(0, 255, SIZE[0], dtype=np.float32)[None, :, None]
    y = np.linspace(0, 255, SIZE[1], dtype=np.float32)[:, None, None]
    Image.fromarray(np.concatenate([x + 0 * y, y + 0 * x, (x + y) / 2], axis=2).astype(np.uint8)).save(path)


def test_an_image_used_by_many_rows_and_reads_is_decoded_once(tmp_path, decodes):
    src = tmp_path / "src"
    src.mkdir()
    _big_image(src / "big.png")
    rows = [{"title": f"T{i}", "text": f"Paragraph {i} about the big picture.", "image": "big.png"} for i in range(3)]
    (src / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    store = ImageStore(tmp_path / "store")
    spec = SourceSpec(kind="jsonl", path=src / "m.jsonl")
    df, _ = read_source(spec, store, show_progress=False)
    again, _ = read_source(spec, store, show_progress=False)         # the shard re-materialised
    assert len(df) == 3 and df["image"].nunique() == 1 and again["image"].tolist() == df["image"].tolist()
    assert decodes.count(SIZE) == 1


def test_perceptual_hash_of_a_stored_image_is_computed_once_across_stages(tmp_path, decodes):
    _big_image(tmp_path / "big.png")
    stored = str(ImageStore(tmp_path / "store").put(open_image(tmp_path / "big.png")))
    want = imagehash.phash(open_image(stored))
    decodes.clear()
    dups, unreadable = near_duplicate_images([stored, stored], max_distance=0)     # candidates stage
    assert [(d.index, d.of_index) for d in dups] == [(1, 0)] and unreadable == []
    assert filtering_dedup.phash(stored) == want                                  # filtering stage
    assert phash_int(stored) == int(str(want), 16)
    assert decodes.count(SIZE) == 1
    # a later stage runs in a new process: the in-memory memos are gone, the on-disk cache is not
    images._PHASH_MEMO.clear()
    filtering_dedup._PHASH.clear()
    file_hashes._MEMO.clear()
    assert filtering_dedup.phash(stored) == want and phash_int(stored) == int(str(want), 16)
    assert decodes.count(SIZE) == 1


def test_a_remembered_image_still_obeys_the_pixel_limit(tmp_path, decodes):
    _big_image(tmp_path / "big.png")
    store = ImageStore(tmp_path / "store")
    first = store.put_source(tmp_path / "big.png")
    assert store.put_source(tmp_path / "big.png") == first and decodes.count(SIZE) == 1
    with pytest.raises(UnreadableImageError, match="exceeds the limit of 1000000"):
        store.put_source(tmp_path / "big.png", max_pixels=1_000_000)
