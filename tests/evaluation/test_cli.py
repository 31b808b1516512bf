"""``gme-data eval``: outputs (results.json keys, markdown, PNG, DuckDB), suites, comparisons, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from gme_data.cli import main
from gme_data.evaluation.local_suite import build_local_suite
from gme_data.evaluation.registry import LOCAL_REGISTRY, TASKS

from .conftest import make_colour_t2i

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def prompt_cache() -> Path:
    """The offline embedder's shared class-prompt cache (a derived, content-keyed .npy): reusing it
    across sessions saves ~1000 MiniLM encodings per test session."""
    from gme_data.settings import cache_dir

    return cache_dir() / "offline_embedder"


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("GME_DATA_HOME", str(tmp_path / "home"))


def _default_model(prompt_cache: Path) -> list[str]:
    """The offline default embedder (real weights), OCR off to keep CI fast."""
    return ["--model", "default", "--model-option", "ocr=false", "--model-option", f"prompt_cache_dir={prompt_cache}"]


def _check_outputs(out: Path) -> dict:
    res = json.loads((out / "results.json").read_text())
    for key in ("ndcg@10", "ndcg@5", "recall@5", "recall@10", "hit@5", "mrr@10", "map@10", "precision@5"):
        assert 0.0 <= res[key] <= 100.0, key
    assert {"model", "suite", "main_score", "tasks", "categories", "datasets", "failed"} <= set(res)
    md = (out / "report.md").read_text()
    assert md.startswith("# UMRB-style evaluation") and "GME-2B (published)" in md and "| model |" in md
    png = (out / "scores.png").read_bytes()
    assert png.startswith(PNG_MAGIC)
    with Image.open(out / "scores.png") as im:
        assert im.size[0] > 300 and im.size[1] > 200
    return res


def test_eval_one_local_dataset(tmp_path: Path, prompt_cache: Path, capsys) -> None:
    data = make_colour_t2i(tmp_path / "colours")
    out = tmp_path / "out"
    code = main(["eval", *_default_model(prompt_cache), "--data", str(data), "--out", str(out), "--quiet"])
    assert code == 0
    res = _check_outputs(out)
    assert res["model"] == "offline-minilm-mobilenetv2" and list(res["datasets"]) == ["colours"]
    ds = res["datasets"]["colours"]
    assert ds["task"] == "T->I" and ds["main_metric"] == "hit@5" and ds["main_score"] == res["main_score"]
    assert ds["num_queries"] == 8 and ds["num_candidates"] == 16
    assert "average" in capsys.readouterr().out


def test_eval_local_suite_with_db_and_compare(tmp_path: Path, prompt_cache: Path) -> None:
    root = tmp_path / "root"
    build_local_suite(root / "local", n_images=8, n_vqa_queries=4, n_docs=3, n_photos=4)
    out1, out2, db = tmp_path / "base", tmp_path / "new", tmp_path / "res.duckdb"
    common = [*_default_model(prompt_cache), "--data-root", str(root), "--cache-dir", str(tmp_path / "cache"),
              "--quiet"]
    assert main(["eval", *common, "--suite", "local", "--out", str(out1), "--db", str(db)]) == 0
    res = _check_outputs(out1)
    assert list(res["datasets"]) == list(LOCAL_REGISTRY) and res["complete"] is True
    assert set(res["tasks"]) == set(TASKS)
    assert set(res["categories"]) == {"single-modal", "cross-modal", "fused-modal"}
    for slug, r in res["datasets"].items():
        assert 0.0 <= r["main_score"] <= 100.0 and r["main_metric"] == LOCAL_REGISTRY[slug].metric_key

    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    n_main = con.execute("SELECT count(*) FROM umrb_results WHERE is_main").fetchone()[0]
    avg = con.execute("SELECT value FROM umrb_results_summary WHERE level='overall'").fetchone()[0]
    con.close()
    assert n_main == len(LOCAL_REGISTRY) and avg == pytest.approx(res["main_score"])

    # a second run of part of the suite, compared with the first in one table and chart
    assert main(["eval", *common, "--suite", "local", "--tasks", "T2I", "--out", str(out2),
                 "--compare", str(out1), "--label", "new", "base"]) == 0
    res2 = json.loads((out2 / "results.json").read_text())
    assert set(res2["tasks"]) == {"T->I"}
    md = (out2 / "report.md").read_text()
    assert "| new |" in md and "| base |" in md and "local_docs_t2t" in md  # compared run's datasets listed
    assert res2["datasets"]["local_photos_t2i"]["main_score"] == pytest.approx(
        res["datasets"]["local_photos_t2i"]["main_score"])


def test_usage_errors(tmp_path: Path, capsys) -> None:
    assert main(["eval", "--out", str(tmp_path / "o")]) == 2
    assert "choose datasets" in capsys.readouterr().err
    assert main(["eval", "--suite", "local"]) == 2
    assert main(["eval", "--suite", "nope", "--out", str(tmp_path / "o")]) == 2
    assert "unknown suite" in capsys.readouterr().err
    assert main(["eval", "--datasets", "scifact", "--model-option", "oops", "--out", str(tmp_path / "o")]) == 2
    assert main([]) == 2


def test_list(capsys) -> None:
    assert main(["eval", "--list"]) == 0
    out = capsys.readouterr().out
    assert "47 dataset(s)" in out and "BeIR/scifact" in out
    assert main(["eval", "--list", "--suite", "umrb-partial"]) == 0
    assert "18 dataset(s)" in capsys.readouterr().out


def test_unavailable_datasets_exit_codes(tmp_path: Path, monkeypatch, embedder, capsys) -> None:
    # the model is the real test embedder (loading the default one is not what this test is about)
    monkeypatch.setattr("gme_data.evaluation.api.resolve_embedder", lambda *a, **k: embedder)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    root = tmp_path / "root"
    make_colour_t2i(root / "flickr30k_t2i")  # a local copy of one UMRB dataset
    args = ["eval", "--data-root", str(root), "--out", str(tmp_path / "o"), "--quiet", "--cache-dir",
            str(tmp_path / "c")]
    assert main([*args, "--datasets", "scifact"]) == 2
    assert "scifact" in capsys.readouterr().err
    assert main([*args, "--datasets", "scifact", "flickr30k_t2i"]) == 1
    res = json.loads((tmp_path / "o" / "results.json").read_text())
    assert list(res["datasets"]) == ["flickr30k_t2i"] and "scifact" in res["failed"]
    assert "Unavailable datasets" in (tmp_path / "o" / "report.md").read_text()
    assert main([*args, "--datasets", "scifact", "--fail-fast"]) == 2
