"""JSONL / CSV / Parquet manifests: rows load, images are decoded into the store, errors name the input."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image
from source_photos import photo

from gme_data.errors import SourceError
from gme_data.sources import RAW_COLUMNS, SourceSpec, read_source


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def test_jsonl_rows_load_with_images_in_store(tmp_path, photos, store):
    manifest = write_jsonl(tmp_path / "m.jsonl", [
        {"title": "Cat", "text": "A cat sits.", "image": "img/cat.png", "url": "https://x/cat"},
        {"title": "Coffee", "text": "  A cup of coffee.  ", "image": "img/coffee.png"},
        {"title": "Tea", "text": "Tea is a drink."},
    ])
    df, out = read_source(SourceSpec(kind="jsonl", path=manifest, shard="s1"), store, show_progress=False)
    assert list(df.columns) == list(RAW_COLUMNS)
    assert df["title"].tolist() == ["Cat", "Coffee", "Tea"]
    assert df["text"].tolist() == ["A cat sits.", "A cup of coffee.", "Tea is a drink."]
    assert df["url"].tolist() == ["https://x/cat", None, None]
    assert set(df["source"]) == {"m"} and set(df["shard"]) == {"s1"}
    stored = Image.open(df["image"][0])
    assert stored.mode == "RGB" and stored.size == Image.open(photos["cat"]).size
    assert Path(df["image"][0]).parent.parent == store.root
    assert df["image"][2] is None
    assert [r.status for r in out.records] == ["kept"] * 3


def test_csv_rows_load_and_bad_image_is_dropped_with_row_number(tmp_path, photos, store):
    manifest = tmp_path / "m.csv"
    pd.DataFrame({"title": ["Cat", "Rocket", "Missing"],
                  "text": ["A cat.", "A rocket.", "Where is the picture?"],
                  "image": ["img/cat.png", "img/rocket.png", "img/nope.png"]}).to_csv(manifest, index=False)
    df, out = read_source(SourceSpec(kind="csv", path=manifest), store, show_progress=False)
    assert df["title"].tolist() == ["Cat", "Rocket"]
    (drop,) = [r for r in out.records if r.status == "dropped"]
    assert drop.reason == "image_not_found"
    assert "m.csv row 4" in drop.payload["message"] and "nope.png" in drop.payload["message"]
    assert drop.payload["field"] == "image"


def test_parquet_with_image_bytes_and_wrong_type_text(tmp_path, store):
    buf = io.BytesIO()
    photo("coffee").save(buf, format="JPEG")
    good = tmp_path / "good.parquet"
    pd.DataFrame({"id": ["a", "b"], "title": ["Coffee", "Note"], "text": ["Coffee is brewed.", "Text only."],
                  "image": [buf.getvalue(), None]}).to_parquet(good)
    df, _ = read_source(SourceSpec(kind="parquet", path=good), store, show_progress=False)
    assert df["title"].tolist() == ["Coffee", "Note"]
    assert Image.open(df["image"][0]).size == photo("coffee").size and df["image"][1] is None

    numeric = tmp_path / "numeric.parquet"
    pd.DataFrame({"title": ["n"], "text": [12345]}).to_parquet(numeric)
    df, out = read_source(SourceSpec(kind="parquet", path=numeric), store, show_progress=False)
    assert df.empty and out.drop_counts() == {"wrong_type": 1}
    assert "numeric.parquet row 0" in out.records[0].payload["message"]


def test_each_bad_row_kind_is_dropped_and_the_rest_load(tmp_path, photos, store):
    (tmp_path / "img" / "broken.png").write_bytes(b"not an image at all")
    from gme_data.sample_corpus.render import bomb_png

    (tmp_path / "img" / "bomb.png").write_bytes(bomb_png())
    manifest = write_jsonl(tmp_path / "bad.jsonl", [
        {"title": "ok1", "text": "Fine paragraph one.", "image": "img/cat.png"},
        {"title": "broken", "text": "Has a broken image.", "image": "img/broken.png"},
        {"title": "bomb", "text": "Has a bomb image.", "image": "img/bomb.png"},
        {"title": "empty", "text": "   ", "image": "img/coffee.png"},
        {"title": "nothing", "text": "", "image": None},
        {"title": "number", "text": 42},
        {"title": "list", "text": ["a", "b"]},
        {"title": "no text key", "image": "img/rocket.png"},
        {"title": "lost", "text": "Lost image.", "image": "img/lost.png"},
        "{not json",
        {"title": "ok2", "text": "Fine paragraph two."},
    ])
    df, out = read_source(SourceSpec(kind="jsonl", path=manifest), store, show_progress=False)
    assert df["title"].tolist() == ["ok1", "ok2"]
    reasons = {r.payload["where"]: r.reason for r in out.records if r.status == "dropped"}
    assert reasons == {
        "bad.jsonl line 2": "unreadable_image",
        "bad.jsonl line 3": "decompression_bomb",
        "bad.jsonl line 4": "empty_text",
        "bad.jsonl line 5": "empty_text_and_image",
        "bad.jsonl line 6": "wrong_type",
        "bad.jsonl line 7": "wrong_type",
        "bad.jsonl line 8": "missing_field",
        "bad.jsonl line 9": "image_not_found",
        "bad.jsonl line 10": "malformed_row",
    }
    assert len({r.record_id for r in out.records}) == len(out.records) == 11
    assert list(store.root.rglob("*.tmp")) == []


def test_missing_manifest_raises_source_error_naming_it(tmp_path, store):
    with pytest.raises(SourceError, match="nowhere.jsonl"):
        read_source(SourceSpec(kind="jsonl", path=tmp_path / "nowhere.jsonl"), store, show_progress=False)


def test_csv_without_text_column_raises_source_error_naming_column(tmp_path, store):
    manifest = tmp_path / "m.csv"
    pd.DataFrame({"title": ["a"], "body": ["b"]}).to_csv(manifest, index=False)
    with pytest.raises(SourceError, match=r"m\.csv.*'text'"):
        read_source(SourceSpec(kind="csv", path=manifest), store, show_progress=False)
    df, _ = read_source(SourceSpec(kind="csv", path=manifest, text_column="body"), store, show_progress=False)
    assert df["text"].tolist() == ["b"]


def test_exif_orientation_is_applied(tmp_path, store):
    img = Image.new("RGB", (60, 30), (255, 255, 255))
    img.paste((255, 0, 0), (0, 0, 30, 30))  # red left half as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    img.save(tmp_path / "rot.jpg", format="JPEG", exif=exif, quality=95)
    manifest = write_jsonl(tmp_path / "m.jsonl", [{"title": "r", "text": "Rotated.", "image": "rot.jpg"}])
    df, _ = read_source(SourceSpec(kind="jsonl", path=manifest), store, show_progress=False)
    stored = Image.open(df["image"][0]).convert("RGB")
    assert stored.size == (30, 60)
    top, bottom = stored.getpixel((15, 10)), stored.getpixel((15, 50))
    assert top[0] > 200 and top[1] < 60  # the red half is on top after the 90 degree rotation
    assert min(bottom) > 200


def test_ids_are_deterministic_and_unique(tmp_path, photos):
    rows = [{"title": "Cat", "text": "A cat.", "image": "img/cat.png"},
            {"title": "Dup", "text": "Same."}, {"title": "Dup", "text": "Same."}]
    manifest = write_jsonl(tmp_path / "m.jsonl", rows)
    spec = SourceSpec(kind="jsonl", path=manifest, name="src")
    from gme_data.images import ImageStore

    a, _ = read_source(spec, ImageStore(tmp_path / "s1"), show_progress=False)
    b, _ = read_source(spec, ImageStore(tmp_path / "s2"), show_progress=False)
    assert a["id"].tolist() == b["id"].tolist()
    assert a["id"].is_unique and all(i.startswith("raw-") for i in a["id"])
    write_jsonl(manifest, [{"title": "New", "text": "Inserted first."}] + rows)
    c, _ = read_source(spec, ImageStore(tmp_path / "s3"), show_progress=False)
    assert c["id"].tolist()[1:] == a["id"].tolist()  # content-based: other rows keep their ids
    other, _ = read_source(SourceSpec(kind="jsonl", path=manifest, name="other"), ImageStore(tmp_path / "s4"),
                           show_progress=False)
    assert set(other["id"]).isdisjoint(c["id"])
