"""The export library on a small table of real PNG files: Hugging Face round trip, ms-swift rows, hub push."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import datasets
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from gme_data.errors import ExportError, InvalidInputError
from gme_data.export import export_hf_dataset, export_swift_embedding, swift_rows
from gme_data.export.hub import HubTarget


def _png(path: Path, color: tuple[int, int, int], size: tuple[int, int] = (6, 4)) -> str:
    Image.new("RGB", size, color).save(path)
    return str(path)


@pytest.fixture()
def table(tmp_path: Path) -> pd.DataFrame:
    a, b, c = (_png(tmp_path / f"{n}.png", col) for n, col in (("a", (255, 0, 0)), ("b", (0, 255, 0)),
                                                                ("c", (0, 0, 255))))
    return pd.DataFrame([
        {"id": "s1", "combination": "T->T", "split": "train", "instruction": "Find the passage.",
         "query_text": "what is a cat", "query_image": None, "pos_id": "p1", "pos_text": "Cats are mammals.",
         "pos_image": None, "neg_ids": np.array(["n1", "n2"], dtype=object),
         "neg_texts": np.array(["Dogs bark.", None], dtype=object),
         "neg_images": np.array([None, b], dtype=object), "positive_rank": 1, "_gate": True},
        {"id": "s2", "combination": "IT->I", "split": "train", "instruction": None,
         "query_text": "this animal", "query_image": a, "pos_id": "p2", "pos_text": None, "pos_image": c,
         "neg_ids": np.array([], dtype=object), "neg_texts": np.array([], dtype=object),
         "neg_images": np.array([], dtype=object), "positive_rank": 2, "_gate": True},
        {"id": "s3", "combination": "I->T", "split": "validation", "instruction": "Describe.",
         "query_text": None, "query_image": b, "pos_id": "p3", "pos_text": "A green square.", "pos_image": None,
         "neg_ids": np.array(["n3"], dtype=object), "neg_texts": np.array(["A red square."], dtype=object),
         "neg_images": np.array([a], dtype=object), "positive_rank": 1, "_gate": True},
    ])


def _same_pixels(decoded: Image.Image, path: str) -> bool:
    with Image.open(path) as im:
        return np.array_equal(np.asarray(decoded.convert("RGB")), np.asarray(im.convert("RGB")))


def _plain(value: object) -> object:
    """pandas' missing-value markers (NaN in string columns) as None."""
    return None if not isinstance(value, (str, int, np.integer)) and pd.isna(value) else value


def _check_split(ds: datasets.Dataset, view: pd.DataFrame) -> None:
    assert len(ds) == len(view)
    for got, (_, want) in zip(ds, view.iterrows(), strict=True):
        for col in ("id", "combination", "instruction", "query_text", "pos_id", "pos_text", "positive_rank"):
            assert got[col] == _plain(want[col]), col
        assert got["neg_ids"] == list(want["neg_ids"]) and got["neg_texts"] == list(want["neg_texts"])
        for col in ("query_image", "pos_image"):
            assert (got[col] is None) == (_plain(want[col]) is None)
            if _plain(want[col]) is not None:
                assert isinstance(got[col], Image.Image) and _same_pixels(got[col], want[col])
        assert len(got["neg_images"]) == len(want["neg_images"])
        for im, p in zip(got["neg_images"], want["neg_images"], strict=True):
            assert (im is None) == (p is None) and (p is None or _same_pixels(im, p))
        assert "_gate" not in got and "split" not in got


def test_hf_export_round_trips_through_disk_and_parquet(table: pd.DataFrame, tmp_path: Path) -> None:
    out = export_hf_dataset(table, tmp_path / "hf")
    assert out.rows == {"train": 2, "validation": 1} and out.images == 3
    for p in tmp_path.glob("*.png"):  # the export does not depend on the source files any more
        p.rename(p.with_suffix(".moved"))
    moved = table.copy()
    for col in ("query_image", "pos_image"):
        moved[col] = pd.Series([p.replace(".png", ".moved") if isinstance(p, str) else None for p in table[col]],
                               dtype=object)
    moved["neg_images"] = [[None if p is None else p.replace(".png", ".moved") for p in v] for v in table["neg_images"]]
    disk = datasets.load_from_disk(str(out.disk_path))
    parquet = datasets.load_dataset("parquet", data_dir=str(out.path / "data"))
    for loaded in (disk, parquet):
        assert set(loaded) == {"train", "validation"}
        assert isinstance(loaded["train"].features["query_image"], datasets.Image)
        assert isinstance(loaded["train"].features["neg_images"].feature, datasets.Image)
        for split in ("train", "validation"):
            _check_split(loaded[split], moved[moved["split"] == split])
    assert loaded["train"][1]["query_image"].size == (6, 4)


def test_hf_export_missing_image_names_row_and_keeps_previous_export(table: pd.DataFrame, tmp_path: Path) -> None:
    first = export_hf_dataset(table, tmp_path / "hf")
    before = sorted(p.relative_to(first.path) for p in first.path.rglob("*"))
    broken = table.copy()
    broken.loc[2, "query_image"] = str(tmp_path / "gone.png")
    with pytest.raises(ExportError, match=r"row 's3' column 'query_image': cannot read image .*gone\.png"):
        export_hf_dataset(broken, tmp_path / "hf")
    assert sorted(p.relative_to(first.path) for p in first.path.rglob("*")) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".hf.")]
    assert len(datasets.load_from_disk(str(first.disk_path))["train"]) == 2


def test_swift_rows_follow_ms_swift_infonce_format(table: pd.DataFrame, tmp_path: Path) -> None:
    out = export_swift_embedding(table, tmp_path / "swift")
    assert out.rows == {"train": 2, "validation": 1} and out.images == 3
    assert out.negatives_per_row == {0: 1, 1: 1, 2: 1}
    rows = [json.loads(x) for x in (out.path / "train.jsonl").read_text().splitlines()]
    first, second = rows
    assert first["messages"] == [{"role": "system", "content": "Find the passage."},
                                 {"role": "user", "content": "what is a cat"}]
    assert first["images"] == [] and first["positive_images"] == [[]]
    assert first["negative_messages"] == [[{"role": "user", "content": "Dogs bark."}],
                                          [{"role": "user", "content": "<image>"}]]
    assert first["negative_images"] == [[], ["images/b.png"]]
    assert second["messages"] == [{"role": "user", "content": "<image>this animal"}]
    assert second["images"] == ["images/a.png"] and second["positive_images"] == [["images/c.png"]]
    assert second["negative_messages"] == [] and second["negative_images"] == []
    for r in rows:  # every <image> tag has its file, next to the JSONL
        for msgs, imgs in [(r["messages"], r["images"])] + list(zip(r["positive_messages"], r["positive_images"],
                                                                   strict=True)) \
                + list(zip(r["negative_messages"], r["negative_images"], strict=True)):
            assert sum(m["content"].count("<image>") for m in msgs) == len(imgs)
            assert all((out.path / p).is_file() for p in imgs)
    with pytest.raises(ExportError, match="row 'x' has neither query text nor query image"):
        list(swift_rows(pd.DataFrame([{"id": "x", "query_text": " ", "pos_text": "p"}])))


class _EchoingHub(BaseHTTPRequestHandler):
    """A hub that refuses every request and echoes the Authorization header back (as some proxies do)."""

    seen: list[str] = []

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - silence
        pass

    def _refuse(self) -> None:
        type(self).seen.append(self.headers.get("Authorization", ""))
        body = json.dumps({"error": f"bad credentials: {self.headers.get('Authorization')}"}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = _refuse  # noqa: N815 - http.server naming


def test_hub_push_error_never_shows_the_token(table: pd.DataFrame, tmp_path: Path) -> None:
    out = export_hf_dataset(table, tmp_path / "hf")
    (out.path / "README.md").write_text("---\nlicense: unknown\n---\n# card\n")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoingHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    token = "hf_TopSecretToken0123456789"
    code = ("import sys; from gme_data.export.hub import HubTarget, push_folder_to_hub\n"
            f"push_folder_to_hub({str(out.path)!r}, HubTarget(repo_id='me/data', token_env='GME_TEST_HUB_TOKEN', "
            f"endpoint='http://127.0.0.1:{server.server_port}'))\n")
    # online for this one process (huggingface_hub is offline when either variable is set), talking to 127.0.0.1
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(GME_TEST_HUB_TOKEN=token, GME_DATA_HUB_TOKEN_ENVS="HF_TOKEN,GME_TEST_HUB_*",
               PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    try:
        proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    finally:
        server.shutdown()
    assert proc.returncode != 0
    assert "ExportError: hub push to me/data failed" in proc.stderr
    assert token not in proc.stdout + proc.stderr
    assert _EchoingHub.seen and all(token in h for h in _EchoingHub.seen)  # the token was sent, only to the hub
    assert HubTarget(repo_id="me/data", token_env="HF_TOKEN").configured() is (bool(os.environ.get("HF_TOKEN")))


def test_hub_token_only_from_admitted_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOME_OTHER_SECRET", "aws-secret-value-123")
    monkeypatch.delenv("GME_DATA_HUB_TOKEN_ENVS", raising=False)
    with pytest.raises(InvalidInputError, match=r"token_env='SOME_OTHER_SECRET' is not an allowed token variable"):
        HubTarget(repo_id="me/data", token_env="SOME_OTHER_SECRET").configured()
    monkeypatch.setenv("GME_DATA_HUB_TOKEN_ENVS", "SOME_OTHER_*")
    assert HubTarget(repo_id="me/data", token_env="SOME_OTHER_SECRET").token() == "aws-secret-value-123"
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("GME_DATA_HUB_TOKEN_ENVS", "HF_TOKEN")
    assert HubTarget(repo_id="me/data").configured() is False  # nothing to push with: the export stays local
