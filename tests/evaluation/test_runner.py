"""Runner end to end with a real (small) embedder: scores, corpus cache, resumability, search."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gme_data.evaluation import metrics as M
from gme_data.evaluation.errors import DatasetUnavailableError
from gme_data.evaluation.loaders import load_local
from gme_data.evaluation.registry import get_spec
from gme_data.evaluation.runner import run_suite, score_part
from gme_data.evaluation.search import exact_search

from .conftest import make_colour_t2i, make_text_t2t, write_layout


@pytest.fixture
def two_datasets(tmp_path: Path) -> list[Path]:
    return [make_colour_t2i(tmp_path / "data" / "colours"), make_text_t2t(tmp_path / "data" / "passages")]


def test_end_to_end_scores_and_cache(tmp_path: Path, embedder, two_datasets) -> None:
    cache = tmp_path / "cache"
    res = run_suite(embedder, two_datasets, tmp_path / "out1", cache_dir=cache, show_progress=False)
    assert set(res.datasets) == {"colours", "passages"} and not res.failed
    for r in res.datasets.values():
        assert r.scores and all(0.0 <= v <= 100.0 for v in r.scores.values())
        assert r.main_score == r.scores[r.metric_key]
        assert not r.corpus_from_cache
    col, txt = res.datasets["colours"], res.datasets["passages"]
    assert (col.task, col.metric_key, txt.task, txt.metric_key) == ("T->I", "hit@5", "T->T", "ndcg@10")
    # colour words in the captions meet the colour histograms: every caption finds its squares
    assert col.main_score == 100.0 and col.scores["recall@1"] == 50.0  # two relevant images per caption
    assert txt.main_score > 80.0  # MiniLM ranks the right passage first for these questions
    assert res.overall == pytest.approx((col.main_score + txt.main_score) / 2)
    assert res.tasks == {"T->T": txt.main_score, "T->I": col.main_score}
    assert embedder.calls["candidate"] == 2 and (tmp_path / "out1" / "datasets" / "colours.json").is_file()
    # per-query instruction override -> its own encode group
    assert "Find the passage about insects." in embedder.instructions
    assert (cache / "corpus").is_dir() and len(list((cache / "corpus").rglob("*.npy"))) == 2

    # second run, fresh output folder (nothing to resume), same cache: corpus is not encoded again
    embedder.reset()
    res2 = run_suite(embedder, two_datasets, tmp_path / "out2", cache_dir=cache, show_progress=False)
    assert embedder.calls["candidate"] == 0 and embedder.calls["query"] >= 2
    assert all(r.corpus_from_cache for r in res2.datasets.values())
    for k, r in res.datasets.items():
        assert res2.datasets[k].scores == pytest.approx(r.scores)

    # a changed corpus changes the fingerprint: encoded again
    embedder.reset()
    with (two_datasets[1] / "corpus.jsonl").open("a") as fh:
        fh.write(json.dumps({"id": "p7", "text": "A new passage about deserts."}) + "\n")
    run_suite(embedder, two_datasets[1:], tmp_path / "out3", cache_dir=cache, show_progress=False)
    assert embedder.calls["candidate"] == 1


def test_resume_skips_finished_datasets(tmp_path: Path, embedder, two_datasets) -> None:
    out, cache = tmp_path / "out", tmp_path / "cache"
    first = run_suite(embedder, two_datasets, out, cache_dir=cache, show_progress=False)
    embedder.reset()
    again = run_suite(embedder, two_datasets, out, cache_dir=cache, show_progress=False)
    assert embedder.calls == {} and again.datasets["passages"].scores == first.datasets["passages"].scores
    # losing one result file re-evaluates that dataset only
    (out / "datasets" / "passages.json").unlink()
    embedder.reset()
    run_suite(embedder, two_datasets, out, cache_dir=cache, show_progress=False)
    assert embedder.calls["query"] >= 1 and embedder.calls["candidate"] == 0  # corpus from cache
    assert (out / "datasets" / "passages.json").is_file()
    # other settings (top_k) invalidate the stored results; resume=False always re-evaluates
    embedder.reset()
    run_suite(embedder, two_datasets[:1], out, cache_dir=cache, show_progress=False, top_k=20)
    assert embedder.calls["query"] == 1
    embedder.reset()
    run_suite(embedder, two_datasets[:1], out, cache_dir=cache, show_progress=False, top_k=20, resume=False)
    assert embedder.calls["query"] == 1
    # edited judgements of a local dataset invalidate its stored result (corpus cache still valid)
    with (two_datasets[1] / "qrels.tsv").open("a") as fh:
        fh.write("q1\tp6\t1\n")
    embedder.reset()
    res = run_suite(embedder, two_datasets, out, cache_dir=cache, show_progress=False, top_k=20)
    assert embedder.calls["query"] == 2 and embedder.calls["candidate"] == 0  # passages only (2 instructions)
    assert res.datasets["passages"].num_queries == 4


def test_failures_are_reported_and_retried(tmp_path: Path, embedder, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    data_root = tmp_path / "root"
    make_text_t2t(data_root / "scifact")  # a local copy for scifact; nfcorpus has none
    specs = [get_spec("scifact"), get_spec("nfcorpus")]
    res = run_suite(embedder, specs, tmp_path / "out", data_root=data_root, cache_dir=tmp_path / "c",
                    show_progress=False)
    assert set(res.datasets) == {"scifact"} and set(res.failed) == {"nfcorpus"}
    assert "DatasetUnavailableError" in res.failed["nfcorpus"] and res.to_json()["complete"] is False
    assert not (tmp_path / "out" / "datasets" / "nfcorpus.json").exists()
    with pytest.raises(DatasetUnavailableError):
        run_suite(embedder, specs, tmp_path / "out", data_root=data_root, cache_dir=tmp_path / "c",
                  show_progress=False, on_error="raise")
    # the dataset appears later: the rerun evaluates it and keeps scifact's finished result
    make_text_t2t(data_root / "nfcorpus")
    embedder.reset()
    res = run_suite(embedder, specs, tmp_path / "out", data_root=data_root, cache_dir=tmp_path / "c",
                    show_progress=False)
    assert set(res.datasets) == {"scifact", "nfcorpus"} and not res.failed
    assert embedder.calls["query"] == 2  # nfcorpus only (two instruction groups)


def test_ignore_identical_ids(tmp_path: Path, embedder) -> None:
    texts = ["the cat sat on the mat", "a cat is sitting on a mat", "stock markets fell sharply today"]
    d = write_layout(tmp_path / "dup", [{"id": "a", "text": texts[0]}],
                     [{"id": k, "text": t} for k, t in zip("abc", texts, strict=True)], [("a", "b", 1)],
                     {"task": "T->T", "metric": "Recall@1"})
    data = load_local(d)
    kwargs = dict(cache_dir=None, top_k=10, batch_size=8, device="cpu", show_progress=False)
    kept, _, run = score_part(embedder, data, ["hit@1"], ignore_identical_ids=False, **kwargs)
    assert kept["hit@1"] == 0.0 and next(iter(run["a"])) == "a"  # the query finds itself first
    dropped, _, run = score_part(embedder, data, ["hit@1"], ignore_identical_ids=True, **kwargs)
    assert dropped["hit@1"] == 1.0 and "a" not in run["a"]


def test_runner_metrics_equal_metric_module_on_its_run(tmp_path: Path, embedder) -> None:
    data = load_local(make_text_t2t(tmp_path / "p"))
    scores, _, run = score_part(embedder, data, list(M.DEFAULT_METRICS), cache_dir=None, top_k=100, batch_size=8,
                                device=None, show_progress=False, ignore_identical_ids=False)
    assert scores == pytest.approx(M.evaluate_mean(data.qrels, run, M.DEFAULT_METRICS))


@pytest.mark.parametrize(("nq", "nc", "k", "qchunk", "cchunk"), [(37, 501, 10, 8, 64), (5, 7, 20, 2, 3),
                                                                  (64, 2000, 100, 1024, 262_144)])
def test_exact_search_matches_numpy(nq: int, nc: int, k: int, qchunk: int, cchunk: int) -> None:
    rng = np.random.default_rng(0)
    q = rng.standard_normal((nq, 32)).astype(np.float32)
    c = rng.standard_normal((nc, 32)).astype(np.float32)
    s, i = exact_search(q, c, k, device="cpu", query_chunk=qchunk, corpus_chunk=cchunk)
    kk = min(k, nc)
    assert s.shape == i.shape == (nq, kk)
    full = q @ c.T
    ref_i = np.argsort(-full, axis=1, kind="stable")[:, :kk]
    np.testing.assert_allclose(s, np.take_along_axis(full, ref_i, 1), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(i, ref_i)  # no ties with random floats
