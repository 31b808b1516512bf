"""The image pool: incremental embedding by content hash, persistence, rebuilds, sources."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from gme_data.errors import InvalidInputError, SourceError
from gme_data.images import ImageStore
from gme_data.pool import (
    ImagePool,
    PoolConfig,
    PoolEntry,
    build_pool,
    entries_from_folder,
    entries_from_source,
)
from tests.filtering.sample import CountingEmbedder

CFG = PoolConfig(show_progress=False)


def test_incremental_add_embeds_only_new_images(tmp_path, embedder, images, caplog):
    counting = CountingEmbedder(embedder)
    pool = ImagePool(tmp_path / "pool", counting, CFG)
    first = [PoolEntry(image=images[n], entity=n) for n in ("cat_full", "coffee", "horse")]
    stats = pool.add(first)
    assert (stats.new, stats.embedded, counting.embedded()) == (3, 3, 3)
    before = pool.search(["cat", "horse"], k=3)
    assert [hits[0][0] for hits in before] == [pool.id_for_image(images["cat_full"]),
                                                pool.id_for_image(images["horse"])]

    # reopen: nothing is embedded again, searches are identical
    counting2 = CountingEmbedder(embedder)
    reopened = ImagePool(tmp_path / "pool", counting2, CFG)
    assert len(reopened) == 3 and not reopened.rebuilt
    assert counting2.embedded() == 0
    after = reopened.search(["cat", "horse"], k=3)
    assert [[i for i, _ in h] for h in after] == [[i for i, _ in h] for h in before]
    assert [s for h in after for _, s in h] == pytest.approx([s for h in before for _, s in h], abs=1e-5)

    # grow: the 3 known images (one under a new path: same bytes; two with new text), and 2 new images
    copy = tmp_path / "elsewhere" / "cat copy.png"
    copy.parent.mkdir()
    shutil.copy(images["cat_full"], copy)
    grown = [PoolEntry(image=images["coffee"], entity="coffee", caption="a cup of coffee on a saucer"),
             PoolEntry(image=images["horse"], entity="horse"), PoolEntry(image=str(copy), entity="cat"),
             PoolEntry(image=images["coins"], entity="coins"), PoolEntry(image=images["moon"], entity="moon")]
    with caplog.at_level(logging.INFO, logger="gme_data.pool"):
        stats = reopened.add(grown)
    assert counting2.embedded() == 2
    assert (stats.seen, stats.new, stats.embedded, stats.duplicates, stats.updated) == (5, 2, 2, 3, 2)
    assert len(reopened) == 5
    coffee = reopened.entry(reopened.id_for_image(images["coffee"]))
    assert coffee.caption == "a cup of coffee on a saucer"
    assert reopened.id_for_image(str(copy)) == reopened.id_for_image(images["cat_full"])
    assert reopened.entry(reopened.id_for_image(str(copy))).entity == "cat"

    # persisted: a third instance sees all 5 with no embedding
    counting3 = CountingEmbedder(embedder)
    third = ImagePool(tmp_path / "pool", counting3, CFG)
    assert len(third) == 5 and counting3.embedded() == 0
    assert third.entry(third.id_for_image(images["coffee"])).caption == "a cup of coffee on a saucer"
    manifest = json.loads((tmp_path / "pool" / "manifest.json").read_text())
    assert manifest["embedder"]["name"] == embedder.name and manifest["embedder"]["dim"] == embedder.dim
    assert manifest["n_images"] == 5 and manifest["embedder"]["settings"]["ocr"] is False


def test_other_embedder_rebuilds_with_a_clear_message(tmp_path, embedder, images, caplog):
    pool, stats = build_pool(tmp_path / "pool", embedder, [[PoolEntry(image=images[n]) for n in ("cat_full", "coins")]],
                             CFG)
    assert stats.embedded == 2
    other = CountingEmbedder(embedder, name="another-embedder")
    with caplog.at_level(logging.WARNING, logger="gme_data.pool"):
        rebuilt = ImagePool(tmp_path / "pool", other, CFG)
    assert rebuilt.rebuilt and len(rebuilt) == 2 and other.embedded() == 2
    assert "built with embedder 'offline-minilm-mobilenetv2'" in caplog.text and "rebuilding" in caplog.text
    assert "'another-embedder'" in caplog.text
    manifest = json.loads((tmp_path / "pool" / "manifest.json").read_text())
    assert manifest["embedder"]["name"] == "another-embedder"
    # and once rebuilt, reopening with the same embedder embeds nothing
    again = CountingEmbedder(embedder, name="another-embedder")
    assert len(ImagePool(tmp_path / "pool", again, CFG)) == 2 and again.embedded() == 0

    # a settings change (recorded via extra_settings) also rebuilds
    changed = CountingEmbedder(embedder, name="another-embedder")
    ImagePool(tmp_path / "pool", changed, PoolConfig(show_progress=False, extra_settings={"resolution": 448}))
    assert changed.embedded() == 2


def test_damaged_index_is_rebuilt_from_entries(tmp_path, embedder, images, caplog):
    build_pool(tmp_path / "pool", embedder, [[PoolEntry(image=images["cat_full"]), PoolEntry(image=images["coins"])]],
               CFG)
    (tmp_path / "pool" / "index" / "ids.json").write_text("[]")
    counting = CountingEmbedder(embedder)
    with caplog.at_level(logging.WARNING, logger="gme_data.pool"):
        pool = ImagePool(tmp_path / "pool", counting, CFG)
    assert pool.rebuilt and len(pool) == 2 and counting.embedded() == 2
    assert "rebuilding" in caplog.text


def test_unreadable_images_are_skipped_and_named(tmp_path, embedder, images, caplog):
    folder = tmp_path / "folder"
    folder.mkdir()
    shutil.copy(images["coffee"], folder / "coffee.png")
    (folder / "coffee.txt").write_text("a cup of coffee on a saucer")
    (folder / "broken.png").write_bytes(b"not an image at all")
    counting = CountingEmbedder(embedder)
    pool = ImagePool(tmp_path / "pool", counting, CFG)
    with caplog.at_level(logging.WARNING, logger="gme_data.pool"):
        stats = pool.add(str(folder))
    assert stats.embedded == 1 and counting.embedded() == 1
    assert stats.unreadable == [str(folder / "broken.png")]
    assert "broken.png" in caplog.text
    (entry,) = [pool.entry(i) for i in pool.entries["id"]]
    assert entry.caption == "a cup of coffee on a saucer"
    strict = ImagePool(tmp_path / "strict", embedder, PoolConfig(show_progress=False, on_unreadable="raise"))
    with pytest.raises(SourceError, match="broken.png"):
        strict.add(str(folder))


def test_sources_folder_metadata_parquet_bytes_and_candidates(tmp_path, images, candidates):
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(images["horse"], folder / "sub" / "h.png")
    shutil.copy(images["moon"], folder / "m.png")
    (folder / "metadata.jsonl").write_text(json.dumps({"file_name": "sub/h.png", "caption": "a horse",
                                                       "entity": "horse"}) + "\n")
    entries = list(entries_from_folder(folder))
    assert [(Path(e.image).name, e.caption, e.entity) for e in entries] == [("m.png", None, None),
                                                                           ("h.png", "a horse", "horse")]

    store = ImageStore(tmp_path / "store")
    table = pd.DataFrame({"image": [Path(images["coins"]).read_bytes(), None, Path(images["brick"]).read_bytes()],
                          "caption": ["coins", "no image", "a brick wall"]})
    table.to_parquet(tmp_path / "pool.parquet")
    got = list(entries_from_source(str(tmp_path / "pool.parquet"), image_store=store))
    assert [e.caption for e in got] == ["coins", "a brick wall"]
    assert all(Path(e.image).is_file() and str(store.root) in e.image for e in got)
    # HF-style image dicts and relative paths in a table
    hf_like = pd.DataFrame({"img": [{"bytes": Path(images["moon"]).read_bytes(), "path": None},
                                    {"bytes": None, "path": Path(images["horse"]).name}], "label": ["moon", "horse"]})
    got = list(entries_from_source(hf_like, image_column="img", entity_column="label", image_store=store,
                                   base=Path(images["horse"]).parent))
    assert [e.entity for e in got] == ["moon", "horse"] and got[1].image == images["horse"]

    bad = pd.DataFrame({"image": [b"garbage"]})
    with pytest.raises(InvalidInputError, match="row 0"):
        list(entries_from_source(bad, image_column="image", image_store=store))

    from_cands = list(entries_from_source(candidates))
    assert len(from_cands) == candidates["image"].notna().sum()
    assert {e.entity for e in from_cands} >= {"Cat", "Coffee", "Horse"}


def test_hf_dataset_object_and_saved_folder(tmp_path, images):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict({"image": [Image.open(images["coins"]), Image.open(images["moon"])],
                                     "caption": ["old coins", "the moon"]}).cast_column("image", datasets.Image())
    store = ImageStore(tmp_path / "store")
    got = list(entries_from_source(ds, image_store=store))
    assert [e.caption for e in got] == ["old coins", "the moon"] and all(Path(e.image).is_file() for e in got)
    ds.save_to_disk(str(tmp_path / "saved"))
    again = list(entries_from_source(str(tmp_path / "saved"), image_store=store))
    assert [e.image for e in again] == [e.image for e in got]  # same content -> same stored files


def test_search_finds_the_entity_image_and_lineage(pool, images):
    hits = pool.search(["cat", "coffee", "horse"], k=3)
    assert [h[0][0] for h in hits] == [pool.id_for_image(images[n]) for n in ("cat_full", "coffee", "horse")]
    assert all(len(h) == 3 and h[0][1] >= h[1][1] >= h[2][1] for h in hits)
    out = pool.lineage()
    assert {r.record_id for r in out.records} == set(pool.entries["id"])
    assert pool.search(["cat"], k=100)[0].__len__() == len(pool)
    with pytest.raises(InvalidInputError):
        pool.search(["cat"], k=0)


def test_pool_config_validation():
    with pytest.raises(InvalidInputError):
        PoolConfig(on_unreadable="ignore")
    with pytest.raises(InvalidInputError):
        PoolConfig(batch_size=0)


def test_pil_drawn_image_in_pool_is_a_file(images):
    assert Image.open(images["drawn_shapes"]).size == (256, 256)
