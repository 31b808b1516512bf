"""Finding 8 of issue 14: manifest image and caption paths stay inside the source's folder.

``..``, ``~``, absolute paths and symbolic links that lead elsewhere become recorded drops of their
row (``path_outside_root`` / ``symlink_not_followed``); the rest of the shard loads. Absolute roots
can be allowed explicitly, and links followed on request (their targets still confined).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from source_photos import photo

from gme_data.sources import ReadPolicy, SourceSpec, read_source

SECRET = "api_key = sk-this-must-never-reach-a-row"


@pytest.fixture
def outside(tmp_path) -> Path:
    """A folder beside the source holding a secret file and a photo."""
    d = tmp_path / "outside"
    d.mkdir()
    (d / "secret.txt").write_text(SECRET)
    photo("rocket").save(d / "rocket.png")
    return d


def _drops(out) -> dict[str, tuple[str, str]]:
    return {r.payload["where"]: (r.reason, r.payload["message"]) for r in out.records if r.status == "dropped"}


def _image_folder(tmp_path: Path) -> Path:
    root = tmp_path / "folder"
    root.mkdir()
    photo("chelsea").save(root / "cat.png")
    (root / "cat.txt").write_text("A cat on a sofa.")
    photo("coffee").save(root / "coffee.png")
    return root


def test_symlinked_caption_is_a_recorded_drop_and_its_target_is_never_read(tmp_path, store, outside):
    root = _image_folder(tmp_path)
    (root / "coffee.txt").symlink_to(outside / "secret.txt")
    df, out = read_source(SourceSpec(kind="image_folder", path=root), store, show_progress=False)
    assert not any(SECRET in str(t) for t in df["text"])
    assert df["title"].tolist() == ["cat"] and df["text"].tolist() == ["A cat on a sofa."]
    reason, message = _drops(out)["coffee.png"]
    assert reason == "symlink_not_followed" and "coffee.txt" in message and "symbolic link" in message


def test_symlinked_image_file_in_an_image_folder_is_dropped(tmp_path, store, outside):
    root = _image_folder(tmp_path)
    (root / "rocket.png").symlink_to(outside / "rocket.png")
    df, out = read_source(SourceSpec(kind="image_folder", path=root), store, show_progress=False)
    assert sorted(df["title"]) == ["cat", "coffee"]
    assert _drops(out)["rocket.png"][0] == "symlink_not_followed"


def _jsonl_source(tmp_path: Path, images: list[str]) -> Path:
    src = tmp_path / "src"
    (src / "img").mkdir(parents=True)
    photo("chelsea").save(src / "img" / "cat.png")
    rows = [{"title": f"row {i}", "text": f"Paragraph number {i}.", "image": im} for i, im in enumerate(images)]
    (src / "m.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return src / "m.jsonl"


def test_manifest_image_paths_leading_outside_the_folder_are_dropped(tmp_path, store, outside, monkeypatch):
    monkeypatch.setenv("HOME", str(outside))
    manifest = _jsonl_source(tmp_path, [
        "img/cat.png",                        # 0 kept
        "img/../img/cat.png",                 # 1 kept: stays inside
        str(tmp_path / "src" / "img" / "cat.png"),   # 2 kept: absolute, inside the folder
        "../outside/rocket.png",              # 3 dotdot
        str(outside / "rocket.png"),          # 4 absolute elsewhere
        "~/rocket.png",                       # 5 home folder
        "img/../../outside/rocket.png",       # 6 climbs out
    ])
    df, out = read_source(SourceSpec(kind="jsonl", path=manifest), store, show_progress=False)
    assert df["title"].tolist() == ["row 0", "row 1", "row 2"]
    drops = _drops(out)
    assert sorted(drops) == [f"m.jsonl line {n}" for n in (4, 5, 6, 7)]
    assert all(reason == "path_outside_root" for reason, _ in drops.values())
    assert "leads outside the source folder" in drops["m.jsonl line 4"][1]
    assert "GME_DATA_ALLOWED_ROOTS" in drops["m.jsonl line 5"][1]


def test_symlinked_folder_inside_a_manifest_path_is_not_followed(tmp_path, store, outside):
    manifest = _jsonl_source(tmp_path, ["img/cat.png", "linked/rocket.png"])
    (manifest.parent / "linked").symlink_to(outside)
    df, out = read_source(SourceSpec(kind="jsonl", path=manifest), store, show_progress=False)
    assert df["title"].tolist() == ["row 0"]
    assert _drops(out)["m.jsonl line 2"][0] == "symlink_not_followed"


def test_wikipedia_image_path_outside_is_dropped(tmp_path, store, outside):
    src = tmp_path / "wiki"
    src.mkdir()
    article = {"title": "Rockets", "paragraphs": [{"text": "A rocket flies.", "images": [{"path": "../outside/rocket.png"}]},
                                                  {"text": "Rockets burn fuel."}]}
    (src / "w.jsonl").write_text(json.dumps(article) + "\n")
    df, out = read_source(SourceSpec(kind="wikipedia", path=src / "w.jsonl"), store, show_progress=False)
    assert df["text"].tolist() == ["Rockets burn fuel."]
    assert _drops(out)["w.jsonl line 1 paragraph 0"][0] == "path_outside_root"


def test_allowed_roots_admit_absolute_paths_from_configuration(tmp_path, store, outside, monkeypatch):
    manifest = _jsonl_source(tmp_path, [str(outside / "rocket.png"), "../outside/rocket.png"])
    df, _ = read_source(SourceSpec(kind="jsonl", path=manifest), store, show_progress=False,
                        policy=ReadPolicy(allowed_roots=(outside,)))
    assert df["title"].tolist() == ["row 0", "row 1"]
    monkeypatch.setenv("GME_DATA_ALLOWED_ROOTS", str(outside))
    df, _ = read_source(SourceSpec(kind="jsonl", path=manifest), store, show_progress=False)
    assert len(df) == 2


def test_followed_symlinks_still_stay_inside_the_allowed_roots(tmp_path, store, outside):
    root = _image_folder(tmp_path)
    (root / "also-cat.png").symlink_to(root / "cat.png")          # link within the folder
    (root / "coffee.txt").symlink_to(outside / "secret.txt")      # link out of it
    follow = ReadPolicy(follow_symlinks=True)
    df, out = read_source(SourceSpec(kind="image_folder", path=root), store, show_progress=False, policy=follow)
    assert sorted(df["title"]) == ["also-cat", "cat"]
    assert not any(SECRET in str(t) for t in df["text"])
    assert _drops(out)["coffee.png"][0] == "path_outside_root"
    df, _ = read_source(SourceSpec(kind="image_folder", path=root), store, show_progress=False,
                        policy=ReadPolicy(follow_symlinks=True, allowed_roots=(outside,)))
    assert SECRET in df.set_index("title").loc["coffee", "text"]   # allowed explicitly: read


def test_relative_allowed_root_is_refused():
    from gme_data.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="must be an absolute path"):
        ReadPolicy(allowed_roots=(Path("relative/dir"),))
