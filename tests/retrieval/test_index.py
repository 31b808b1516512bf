"""faiss index with string ids: exact vs numpy, incremental adds, save/load, HNSW switch, named errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gme_data.retrieval.base import l2_normalize
from gme_data.retrieval.index import DimensionMismatchError, DuplicateIdError, IndexFormatError, VectorIndex


def _clustered(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(20, dim))
    return l2_normalize(centers[rng.integers(0, 20, n)] + 0.3 * rng.normal(size=(n, dim)))


def test_exact_search_matches_numpy_with_incremental_adds():
    vecs = _clustered(300, 48, 0)
    ids = [f"doc-{i}" for i in range(300)]
    index = VectorIndex(48, model_name="test-model")
    for start in (0, 100, 250):
        stop = {0: 100, 100: 250, 250: 300}[start]
        index.add(ids[start:stop], vecs[start:stop])
    assert len(index) == 300 and index.kind == "flat"
    queries = _clustered(10, 48, 1)
    scores, got = index.search_arrays(queries, k=5)
    sims = queries @ vecs.T
    want = np.argsort(-sims, axis=1)[:, :5]
    assert got == [[ids[j] for j in row] for row in want]
    np.testing.assert_allclose(scores, np.take_along_axis(sims, want, 1), atol=1e-5)


def test_save_load_roundtrip(tmp_path):
    vecs = _clustered(50, 16, 2)
    index = VectorIndex(16, model_name="offline-minilm")
    index.add([f"x{i}" for i in range(50)], vecs)
    index.save(tmp_path / "idx")
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    assert manifest["dim"] == 16 and manifest["metric"] == "inner_product" and manifest["model_name"] == "offline-minilm"
    loaded = VectorIndex.load(tmp_path / "idx", expected_dim=16)
    assert loaded.search(vecs[:3], 1)[0][0].id == "x0"
    assert [h.id for h in loaded.search(vecs[7], 3)[0]] == [h.id for h in index.search(vecs[7], 3)[0]]
    loaded.add(["new"], vecs[:1] * -1)
    assert len(loaded) == 51
    with pytest.raises(DimensionMismatchError, match="dim 16"):
        VectorIndex.load(tmp_path / "idx", expected_dim=384)
    (tmp_path / "idx" / "ids.json").unlink()
    with pytest.raises(IndexFormatError, match="ids.json"):
        VectorIndex.load(tmp_path / "idx")


def test_named_errors():
    index = VectorIndex(8, model_name="m")
    index.add(["a"], np.ones((1, 8)))
    with pytest.raises(DimensionMismatchError, match="dim 9.*dim 8"):
        index.add(["b"], np.ones((1, 9)))
    with pytest.raises(DimensionMismatchError):
        index.search(np.ones((1, 4)))
    with pytest.raises(DuplicateIdError, match="'a'"):
        index.add(["a"], np.ones((1, 8)))
    assert index.search(np.ones(8), k=5)[0][0].id == "a"


def test_switches_to_hnsw_past_threshold_with_high_recall():
    vecs = _clustered(600, 32, 3)
    ids = [str(i) for i in range(600)]
    exact = VectorIndex(32)
    exact.add(ids, vecs)
    index = VectorIndex(32, hnsw_threshold=400)
    index.add(ids[:300], vecs[:300])
    assert index.kind == "flat"
    index.add(ids[300:], vecs[300:])
    assert index.kind == "hnsw" and len(index) == 600
    queries = _clustered(20, 32, 4)
    _, got = index.search_arrays(queries, 10)
    _, want = exact.search_arrays(queries, 10)
    recall = np.mean([len(set(g) & set(w)) / 10 for g, w in zip(got, want, strict=True)])
    assert recall >= 0.9
