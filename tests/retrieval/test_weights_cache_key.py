"""Finding 9 of issue 14: a local model folder's embedding-cache key follows its weights, not its path."""

from __future__ import annotations

import sqlite3

import numpy as np
import torch

from gme_data import settings
from gme_data.retrieval import load_embedder
from gme_data.retrieval.qwen2vl_configs import random_qwen2vl
from gme_data.retrieval.weights_hash import DB_NAME, folder_digest

TEXTS = ["a red apple on a table", "a river between mountains"]


def _save(folder, tokenizer, seed: int) -> None:
    random_qwen2vl("tiny", seed=seed, dtype=torch.float32, lm_head=True).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def test_retrained_weights_in_the_same_folder_do_not_reuse_cached_vectors(tmp_path, qwen_tokenizer):
    folder, cache = tmp_path / "model", tmp_path / "emb-cache"
    _save(folder, qwen_tokenizer, seed=1)
    first = load_embedder(str(folder), cache_dir=cache)
    old = first.encode(TEXTS, role="candidate")
    assert len(first.cache) == 2

    _save(folder, qwen_tokenizer, seed=2)            # retrained: new weights, same folder, same name
    again = load_embedder(str(folder), cache_dir=cache)
    got = again.encode(TEXTS, role="candidate")
    fresh = load_embedder(str(folder)).encode(TEXTS, role="candidate")   # no cache at all
    assert not np.allclose(got, old, atol=1e-3), "stale vectors of the old weights were served"
    assert np.allclose(got, fresh, atol=1e-5)
    assert again.name == first.name and again.weights_id == folder_digest(folder) != first.weights_id
    assert len(again.cache) == 4                     # new vectors stored beside the old ones

    same = load_embedder(str(folder), cache_dir=cache)   # unchanged weights: the cache serves them
    assert same.cache_key == again.cache_key
    assert np.array_equal(same.encode(TEXTS, role="candidate"), got) and len(same.cache) == 4


def test_folder_digest_follows_content_and_is_remembered(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"weights-1")
    (folder / "config.json").write_text("{}")
    (folder / ".cache").mkdir()
    (folder / ".cache" / "lock").write_text("x")
    d1 = folder_digest(folder)
    assert folder_digest(folder) == d1
    (folder / ".cache" / "lock").write_text("y")       # hidden entries do not count
    assert folder_digest(folder) == d1
    (folder / "model.safetensors").write_bytes(b"weights-2")
    assert folder_digest(folder) != d1
    with sqlite3.connect(settings.cache_dir() / DB_NAME) as con:
        keys = [k for (k,) in con.execute("SELECT key FROM sha")]
    assert sum(str(folder / "model.safetensors") in k for k in keys) == 2
