"""One MiniLM encoder per process, shared by the classifier, the consistency filter and the embedder."""

from __future__ import annotations

import numpy as np

from gme_data.candidates.classifier import DomainClassifier
from gme_data.filtering.text_retriever import TextRetriever
from gme_data.retrieval.text_encoders import SharedTextEncoder, shared_text_encoder
from gme_data.retrieval.vector_cache import VectorCache

TEXTS = ["A lighthouse is a tower with a bright lamp that guides ships.",
         "The kettle boils water for tea on the kitchen stove.",
         "Honey bees live in colonies and build wax combs in their hive."]


def test_registry_returns_one_instance_for_every_user():
    enc = shared_text_encoder()
    assert shared_text_encoder() is enc and shared_text_encoder("onnx") is enc
    assert DomainClassifier().shared is enc
    assert TextRetriever()._shared is enc


def test_each_text_is_embedded_once_across_processes_and_users(tmp_path):
    cache = VectorCache(tmp_path)
    first = SharedTextEncoder()
    a = first.encode(TEXTS + TEXTS[:1], cache=cache)
    assert first.encoded == 3 and a.shape == (4, 384)
    np.testing.assert_array_equal(a[0], a[3])
    first.encode(TEXTS, cache=cache)
    assert first.encoded == 3  # memo
    second = SharedTextEncoder()  # a fresh process's encoder: vectors come from the disk cache
    b = second.encode(TEXTS, cache=cache)
    assert second.encoded == 0 and cache.hits >= 3
    np.testing.assert_array_equal(a[:3], b)


def test_onnx_vectors_match_the_torch_model():
    onnx = shared_text_encoder("onnx").encode(TEXTS)
    torch = SharedTextEncoder("torch").model.encode(TEXTS)
    cos = (onnx * torch).sum(axis=1)
    assert cos.min() > 0.99  # measured 0.9996-0.9997 on these texts
    np.testing.assert_allclose(np.linalg.norm(onnx, axis=1), 1.0, atol=1e-5)
