"""The local layout loader (happy path and every named error) and offline behaviour of hub sources."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from gme_data.errors import InvalidInputError, SourceError
from gme_data.evaluation.errors import (
    BadRowError,
    DatasetFileMissingError,
    DatasetUnavailableError,
    UnknownIdError,
)
from gme_data.evaluation.loaders import load_local, load_spec
from gme_data.evaluation.registry import get_spec

from .conftest import make_text_t2t, write_layout


def _img(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (200, 10, 10)).save(path)


def test_happy_path(tmp_path: Path) -> None:
    d = make_text_t2t(tmp_path / "passages")
    data = load_local(d)
    assert data.name == "passages" and data.task == "T->T"
    assert list(data.queries) == ["q1", "q2", "q3", "q4"]  # the unjudged query is not evaluated
    assert data.corpus["p1"].text.startswith("Photosynthesis Plants convert")  # title + " " + text
    assert data.qrels["q4"] == {"p5": 2, "p1": 1}
    assert data.instruction == "Given a question, find the passage."
    assert data.query_instructions == {"q3": "Find the passage about insects."}
    assert len(data.corpus_fingerprint()) == 40


def test_images_ints_and_fused_items(tmp_path: Path) -> None:
    _img(tmp_path / "ds" / "img" / "a.png")
    _img(tmp_path / "abs.png")
    d = write_layout(tmp_path / "ds",
                     [{"id": 1, "text": "what colour?", "image": "img/a.png"}, {"id": 2, "image": "img/a.png"}],
                     [{"id": "c1", "text": "red"}, {"id": "c2", "image": str(tmp_path / "abs.png")}],
                     [(1, "c1", 1), (2, "c2", 1)])
    data = load_local(d)
    assert data.queries["1"].modality == "fused" and data.queries["2"].modality == "image"
    assert Path(data.queries["1"].image) == tmp_path / "ds" / "img" / "a.png"
    assert data.corpus["c2"].modality == "image"
    assert data.task is None  # inferred later by the runner


def test_beir_folder_layout(tmp_path: Path) -> None:
    d = tmp_path / "beir"
    (d / "qrels").mkdir(parents=True)
    (d / "corpus.jsonl").write_text(json.dumps({"_id": "d1", "title": "T", "text": "x"}) + "\n")
    (d / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "y"}) + "\n")
    (d / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    data = load_local(d)
    assert data.qrels == {"q1": {"d1": 1}} and data.corpus["d1"].text == "T x"


@pytest.mark.parametrize("missing", ["queries.jsonl", "corpus.jsonl", "qrels.tsv"])
def test_missing_file(tmp_path: Path, missing: str) -> None:
    d = make_text_t2t(tmp_path / "ds")
    (d / missing).unlink()
    with pytest.raises(DatasetFileMissingError) as ei:
        load_local(d)
    assert ei.value.path == d / missing and missing in str(ei.value) and "passages" in str(ei.value)
    assert isinstance(ei.value, SourceError)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(DatasetFileMissingError, match="nowhere"):
        load_local(tmp_path / "nowhere")


@pytest.mark.parametrize(("file", "content", "line", "reason"), [
    ("queries.jsonl", '{"id": "q1", "text": "a"}\n{not json}\n', 2, "invalid JSON"),
    ("queries.jsonl", '{"id": "q1", "text": "a"}\n\n["a list"]\n', 3, "JSON object"),
    ("queries.jsonl", '{"text": "no id"}\n', 1, "'id'"),
    ("corpus.jsonl", '{"id": "p1", "text": "a"}\n{"id": "p1", "text": "b"}\n', 2, "duplicate id"),
    ("corpus.jsonl", '{"id": "p1", "text": 3}\n', 1, "must be a string"),
    ("corpus.jsonl", '{"id": "p1", "text": "  "}\n', 1, "needs 'text' or 'image'"),
    ("queries.jsonl", '{"id": "q1", "image": "missing.png"}\n', 1, "image file not found"),
    ("qrels.tsv", "qid\tdocid\trel\nq1\tp1\t1\n", 1, "header"),
    ("qrels.tsv", "query-id\tcorpus-id\tscore\nq1\tp1\t1\nq1\tp1\n", 3, "3 tab-separated"),
    ("qrels.tsv", "query-id\tcorpus-id\tscore\nq1\tp1\thigh\n", 2, "integer"),
    ("qrels.tsv", "query-id\tcorpus-id\tscore\nq1\tp1\t0.5\n", 2, "integer"),
    ("qrels.tsv", "", 1, "empty qrels"),
])
def test_bad_rows(tmp_path: Path, file: str, content: str, line: int, reason: str) -> None:
    d = write_layout(tmp_path / "ds", [{"id": "q1", "text": "a"}], [{"id": "p1", "text": "b"}], [("q1", "p1", 1)])
    (d / file).write_text(content)
    with pytest.raises(BadRowError) as ei:
        load_local(d)
    err = ei.value
    assert err.path == d / file and err.line == line and reason in str(err)
    assert f"bad row {line}" in str(err) and isinstance(err, InvalidInputError)


def test_qrels_with_unknown_ids(tmp_path: Path) -> None:
    d = write_layout(tmp_path / "ds", [{"id": "q1", "text": "a"}], [{"id": "p1", "text": "b"}],
                     [("q1", "p1", 1), ("q1", "ghost", 1), ("q9", "p1", 1)])
    with pytest.raises(UnknownIdError) as ei:
        load_local(d)
    assert ei.value.kind == "query" and ei.value.ids == ["q9"]
    (d / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tp1\t1\nq1\tghost\t1\nq1\tghost2\t1\n")
    with pytest.raises(UnknownIdError) as ei:
        load_local(d)
    assert ei.value.kind == "corpus" and ei.value.ids == ["ghost", "ghost2"] and "row 3" in str(ei.value)
    data = load_local(d, strict=False)
    assert data.qrels == {"q1": {"p1": 1}}


def test_dataset_json_errors(tmp_path: Path) -> None:
    d = make_text_t2t(tmp_path / "ds")
    (d / "dataset.json").write_text("{oops")
    with pytest.raises(BadRowError, match="dataset.json"):
        load_local(d)
    (d / "dataset.json").write_text(json.dumps({"task": "T->X"}))
    with pytest.raises(BadRowError, match="unknown task"):
        load_local(d)


@pytest.mark.parametrize("slug", ["scifact", "cqadupstack", "vidore_docvqa", "mscoco_t2i", "remuq", "flickr30k_i2t"])
def test_hub_source_offline_names_dataset_and_local_path(tmp_path: Path, monkeypatch, slug: str) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("GME_DATA_MBEIR_ROOT", raising=False)
    spec = get_spec(slug)
    with pytest.raises(DatasetUnavailableError) as ei:
        load_spec(spec, data_root=tmp_path)
    msg = str(ei.value)
    assert repr(slug) in msg and "offline" in msg
    assert str(tmp_path / slug) in msg
    hub = spec.hub_id if slug != "cqadupstack" else "mteb/cqadupstack-android"
    assert hub in msg


def test_local_copy_wins_over_hub(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    make_text_t2t(tmp_path / "scifact")
    (parts,) = [load_spec(get_spec("scifact"), data_root=tmp_path)]
    assert len(parts) == 1 and parts[0].source == str(tmp_path / "scifact")
    # a dataset.json-less copy takes task/metric/instruction from the registry
    (tmp_path / "scifact" / "dataset.json").unlink()
    data = load_spec(get_spec("scifact"), data_root=tmp_path)[0]
    assert data.task == "T->T" and data.metric == "NDCG@10" and data.instruction == get_spec("scifact").instruction


def test_mbeir_checkout_layout(tmp_path: Path, monkeypatch) -> None:
    """An M-BEIR checkout (query jsonl, local pool, qrels, images) read offline."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    root = tmp_path / "M-BEIR"
    spec = get_spec("cirr")
    for name in ("a", "b", "c"):
        _img(root / "mbeir_images" / "cirr_images" / f"{name}.png")
    pool = [{"did": "7:1", "txt": None, "img_path": "mbeir_images/cirr_images/a.png", "modality": "image"},
            {"did": "7:2", "txt": "", "img_path": "mbeir_images/cirr_images/b.png", "modality": "image"}]
    queries = [{"qid": "7:100", "query_txt": "make it blue", "query_img_path": "mbeir_images/cirr_images/c.png",
                "query_modality": "image,text", "pos_cand_list": ["7:2"], "neg_cand_list": [], "task_id": 7},
               {"qid": "7:101", "query_txt": "no positives in the pool", "query_img_path": None,
                "pos_cand_list": ["7:999"]}]
    for rel, rows in ((spec.options["pool"], pool), (spec.options["queries"], queries)):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("".join(json.dumps(r) + "\n" for r in rows))
    (data,) = load_spec(spec, data_root=tmp_path)  # DATA_ROOT/M-BEIR
    assert list(data.queries) == ["7:100"] and data.qrels == {"7:100": {"7:2": 1}}
    assert data.queries["7:100"].modality == "fused" and data.corpus["7:1"].modality == "image"
    assert data.instruction == spec.instruction and data.task == "IT->I"
    # the official qrels file wins over pos_cand_list
    (root / spec.options["qrels"]).parent.mkdir(parents=True, exist_ok=True)
    (root / spec.options["qrels"]).write_text("7:100 0 7:1 1\n")
    monkeypatch.setenv("GME_DATA_MBEIR_ROOT", str(root))
    (data,) = load_spec(spec, data_root=tmp_path / "elsewhere")
    assert data.qrels == {"7:100": {"7:1": 1}}
    # missing images: a named error that says where they should be
    (root / "mbeir_images" / "cirr_images" / "a.png").unlink()
    with pytest.raises(DatasetUnavailableError, match="mbeir_images"):
        load_spec(spec, data_root=tmp_path)


def test_hub_rows_are_converted(tmp_path: Path, monkeypatch) -> None:
    """BEIR row conversion, with the hub call replaced by in-memory datasets (no network)."""
    from datasets import Dataset

    from gme_data.evaluation import loaders

    tables = {
        ("BeIR/scifact", "corpus"): Dataset.from_list([{"_id": "d1", "title": "T", "text": "body"},
                                                       {"_id": "d2", "title": "", "text": "other"}]),
        ("BeIR/scifact", "queries"): Dataset.from_list([{"_id": "q1", "text": "claim"},
                                                        {"_id": "q2", "text": "unjudged"}]),
        ("BeIR/scifact-qrels", None): Dataset.from_list([{"query-id": "q1", "corpus-id": "d1", "score": 1},
                                                         {"query-id": "q1", "corpus-id": "gone", "score": 1}]),
    }
    seen = []

    def fake_load(repo, config=None, split=None):
        seen.append((repo, config, split))
        return tables[(repo, config)]

    monkeypatch.setattr(loaders, "_hf_load", fake_load)
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    (beir,) = load_spec(get_spec("scifact"), data_root=tmp_path)
    assert beir.corpus["d1"].text == "T body" and beir.qrels == {"q1": {"d1": 1}} and list(beir.queries) == ["q1"]
    assert ("BeIR/scifact-qrels", None, "test") in seen
