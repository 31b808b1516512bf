"""Input coercion, Item validation, instruction rules and the on-disk embedding cache."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from gme_data import Item
from gme_data.errors import InvalidInputError, InvalidItemError
from gme_data.retrieval.base import EmbeddingCache, as_items, resolve_instruction
from gme_data.retrieval.gme_qwen2vl import GmeQwen2VL
from gme_data.retrieval.instructions import CANDIDATE_INSTRUCTION


def test_item_validation_errors_name_the_item(tmp_path):
    with pytest.raises(InvalidItemError, match="q7.*text must be str"):
        Item(text=5, id="q7")
    with pytest.raises(InvalidItemError, match="q8.*both are empty"):
        Item(text="  ", id="q8")
    with pytest.raises(InvalidItemError, match="image file not found"):
        Item(image=str(tmp_path / "missing.png"), id="q9")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(InvalidItemError, match="q10.*unreadable image"):
        Item(image=bad, id="q10").load_image()


def test_as_items_coerces_and_names_bad_entries():
    img = Image.new("RGB", (32, 32), "red")
    items = as_items(["a caption", img, Item(text="t", image=img)])
    assert [it.modality for it in items] == ["text", "image", "fused"]
    assert as_items("single")[0].text == "single"
    with pytest.raises(InvalidItemError, match="#1: empty text"):
        as_items(["ok", "   "])
    with pytest.raises(InvalidItemError, match="#0: expected"):
        as_items([b"bytes are ambiguous"])


def test_instruction_rules():
    assert resolve_instruction("query", "Find it.") == "Find it."
    assert resolve_instruction("query", None) == CANDIDATE_INSTRUCTION
    assert resolve_instruction("candidate", "Find it.") == CANDIDATE_INSTRUCTION
    with pytest.raises(InvalidInputError, match="role"):
        resolve_instruction("passage", None)


def test_cache_hits_and_keys(tmp_path, tiny_model, qwen_tokenizer):
    emb = GmeQwen2VL(tiny_model, qwen_tokenizer, name="tiny-gme", cache_dir=tmp_path / "cache")
    items = ["first text", "second text"]
    a = emb.encode(items, instruction="Find it.")
    assert len(emb.cache) == 2
    b = emb.encode(items, instruction="Find it.")
    np.testing.assert_array_equal(a, b)
    assert len(emb.cache) == 2
    c = emb.encode(items, role="candidate")
    assert len(emb.cache) == 4 and np.abs(a - c).max() > 1e-4
    # the cache really serves stored vectors: tamper one and read it back
    key = EmbeddingCache.key(emb.cache_key, "query", "Find it.", Item(text="first text").content_hash())
    emb.cache.put_many([key], np.ones((1, emb.dim), np.float32))
    assert np.allclose(emb.encode(["first text"], instruction="Find it.")[0], 1.0)
