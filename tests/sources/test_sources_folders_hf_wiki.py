"""Image folders with sidecar captions, Hugging Face datasets (saved to disk) and Wikipedia-style articles."""

from __future__ import annotations

import json

import datasets
import huggingface_hub.constants
import pytest
from PIL import Image
from source_photos import photo

from gme_data.errors import SourceError
from gme_data.sources import SourceSpec, read_source


def test_image_folder_with_sidecar_captions(tmp_path, store):
    root = tmp_path / "folder"
    (root / "sub").mkdir(parents=True)
    photo("chelsea").save(root / "cat.jpg")
    (root / "cat.txt").write_text("A tabby cat looking left.\n")
    photo("rocket").save(root / "sub" / "rocket.png")
    (root / "broken.png").write_bytes(b"\x89PNG but truncated")
    (root / "notes.md").write_text("not an image, ignored")
    df, out = read_source(SourceSpec(kind="image_folder", path=root), store, show_progress=False)
    assert df["title"].tolist() == ["cat", "rocket"]
    assert df["text"].tolist() == ["A tabby cat looking left.", None]
    assert all(Image.open(p).mode == "RGB" for p in df["image"])
    assert set(df["source"]) == {"folder"}
    (drop,) = [r for r in out.records if r.status == "dropped"]
    assert drop.reason == "unreadable_image" and drop.payload["where"] == "broken.png"


def test_missing_image_folder_raises(tmp_path, store):
    with pytest.raises(SourceError, match="image folder not found"):
        read_source(SourceSpec(kind="image_folder", path=tmp_path / "none"), store, show_progress=False)


def _saved_dataset(tmp_path):
    features = datasets.Features({"name": datasets.Value("string"), "caption": datasets.Value("string"),
                                  "picture": datasets.Image()})
    ds = datasets.Dataset.from_dict({"name": ["Cat", "Coffee", "Blank"],
                                     "caption": ["A cat on a sofa.", "Coffee in a cup.", ""],
                                     "picture": [photo("chelsea"), photo("coffee"), None]}, features=features)
    path = tmp_path / "saved"
    datasets.DatasetDict({"train": ds, "test": ds.select([0])}).save_to_disk(str(path))
    return path


def test_hf_save_to_disk_with_pil_image_column_and_mapping(tmp_path, store):
    path = _saved_dataset(tmp_path)
    spec = SourceSpec(kind="hf", path=path, split="train", text_column="caption", image_column="picture",
                      title_column="name", name="toy", shard="train")
    df, out = read_source(spec, store, show_progress=False)
    assert df["title"].tolist() == ["Cat", "Coffee"]
    assert df["text"].tolist() == ["A cat on a sofa.", "Coffee in a cup."]
    assert Image.open(df["image"][0]).size == photo("chelsea").size
    assert out.drop_counts() == {"empty_text_and_image": 1}
    test_df, _ = read_source(SourceSpec(kind="hf", path=path, split="test", text_column="caption",
                                        image_column="picture", title_column="name"), store, show_progress=False)
    assert test_df["title"].tolist() == ["Cat"]
    with pytest.raises(SourceError, match="split 'validation' not found"):
        read_source(SourceSpec(kind="hf", path=path, split="validation", text_column="caption"), store)
    with pytest.raises(SourceError, match="text column 'text' not found"):
        read_source(SourceSpec(kind="hf", path=path, split="train"), store)


def test_unavailable_hub_id_raises_source_error_naming_it(store, monkeypatch):
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(SourceError, match="no-such-user/no-such-dataset"):
        read_source(SourceSpec(kind="hf", path="no-such-user/no-such-dataset", split="train"), store,
                    show_progress=False)


def test_wikipedia_articles_flatten_to_paragraph_rows(tmp_path, store):
    (tmp_path / "images").mkdir()
    photo("horse").save(tmp_path / "images" / "horse.png")
    photo("coffee").save(tmp_path / "images" / "coffee.png")
    articles = [
        {"title": "Horse", "url": "https://en.wikipedia.org/wiki/Horse", "paragraphs": [
            {"text": "The horse is a hoofed mammal.",
             "images": [{"path": "images/horse.png", "caption": "A horse"},
                        {"path": "images/coffee.png", "caption": "not first"}]},
            {"text": "Horses sleep standing up.", "images": []},
        ]},
        {"title": "No paragraphs", "url": "https://x"},
        {"title": "Coffee", "paragraphs": [{"text": "Coffee is brewed.", "images": ["images/coffee.png"]}]},
    ]
    manifest = tmp_path / "wiki.jsonl"
    manifest.write_text("\n".join(json.dumps(a) for a in articles))
    df, out = read_source(SourceSpec(kind="wikipedia", path=manifest, shard="w"), store, show_progress=False)
    assert df["title"].tolist() == ["Horse", "Horse", "Coffee"]
    assert df["url"].tolist() == ["https://en.wikipedia.org/wiki/Horse"] * 2 + [None]
    assert Image.open(df["image"][0]).size == photo("horse").size
    assert df["image"][1] is None and df["image"][2] is not None
    kept = [r for r in out.records if r.status == "kept"]
    assert kept[0].payload["image_caption"] == "A horse" and kept[0].payload["paragraph"] == 0
    (drop,) = [r for r in out.records if r.status == "dropped"]
    assert drop.reason == "missing_field" and drop.payload["field"] == "paragraphs"
    assert "wiki.jsonl line 2" in drop.payload["message"]
