"""Finding 10 of issue 14 (text caps): an over-long text field or CSV cell is a recorded drop of its
row (``field_too_long``), not a table that later fails the whole shard's gate."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from source_photos import photo

from gme_data.sources import ReadPolicy, SourceSpec, read_source


def _drops(out) -> dict[str, tuple[str, str, str]]:
    return {r.payload["where"]: (r.reason, r.payload["field"], r.payload["message"])
            for r in out.records if r.status == "dropped"}


def test_over_long_csv_cell_is_a_recorded_drop(tmp_path, store):
    manifest = tmp_path / "m.csv"
    pd.DataFrame({"title": ["Oak", "Long", "Fir"],
                  "text": ["The oak is a tree.", "word " * 5_000, "The fir is a conifer."]}).to_csv(manifest, index=False)
    df, out = read_source(SourceSpec(kind="csv", path=manifest), store, show_progress=False)
    assert df["title"].tolist() == ["Oak", "Fir"]
    reason, field, message = _drops(out)["m.csv row 3"]
    assert (reason, field) == ("field_too_long", "text")
    assert "24999 characters, more than the cap of 20000" in message


def test_text_cap_is_configurable_by_policy_and_environment(tmp_path, store, monkeypatch):
    manifest = tmp_path / "m.jsonl"
    rows = [{"title": "Short", "text": "x" * 50}, {"title": "Longer", "text": "y" * 60}]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = SourceSpec(kind="jsonl", path=manifest)
    df, _ = read_source(spec, store, show_progress=False)
    assert len(df) == 2
    df, out = read_source(spec, store, show_progress=False, policy=ReadPolicy(max_text_chars=55))
    assert df["title"].tolist() == ["Short"] and _drops(out)["m.jsonl line 2"][0] == "field_too_long"
    monkeypatch.setenv("GME_DATA_MAX_TEXT_CHARS", "55")
    df, _ = read_source(spec, store, show_progress=False)
    assert df["title"].tolist() == ["Short"]


def test_over_long_title_is_dropped_naming_the_field(tmp_path, store):
    manifest = tmp_path / "m.jsonl"
    rows = [{"title": "T" * 5_000, "text": "A fine paragraph."}, {"title": "Ok", "text": "Another paragraph."}]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    df, out = read_source(SourceSpec(kind="jsonl", path=manifest), store, show_progress=False)
    assert df["title"].tolist() == ["Ok"]
    assert _drops(out)["m.jsonl line 1"][:2] == ("field_too_long", "title")


def test_over_long_caption_file_is_dropped_without_reading_it_whole(tmp_path, store):
    root = tmp_path / "folder"
    root.mkdir()
    for name in ("cat", "big"):
        photo("chelsea" if name == "cat" else "coffee").save(root / f"{name}.png")
    (root / "cat.txt").write_text("A cat.")
    with open(root / "big.txt", "w") as f:       # 8 MB of caption
        for _ in range(1024):
            f.write("z" * 8192)
    df, out = read_source(SourceSpec(kind="image_folder", path=root), store, show_progress=False,
                          policy=ReadPolicy(max_text_chars=1_000))
    assert df["title"].tolist() == ["cat"]
    reason, field, message = _drops(out)["big.png"]
    assert (reason, field) == ("field_too_long", "text") and "longer than the cap of 1000" in message


def test_source_text_cap_matches_the_candidates_gate():
    from assets.candidates import CandidatesAssetConfig

    assert ReadPolicy().max_text_chars == CandidatesAssetConfig().max_text_chars


def test_invalid_cap_from_environment_is_a_named_error(monkeypatch):
    from gme_data.errors import InvalidInputError

    monkeypatch.setenv("GME_DATA_MAX_TEXT_CHARS", "lots")
    with pytest.raises(InvalidInputError, match="GME_DATA_MAX_TEXT_CHARS='lots'"):
        ReadPolicy.from_env()
