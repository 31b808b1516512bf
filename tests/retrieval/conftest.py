"""Shared, module-scoped model loads for the retrieval tests (everything offline, CPU)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def qwen_tokenizer(tmp_path_factory):
    from gme_data.retrieval.qwen_tokenizer import build_qwen2vl_tokenizer

    return build_qwen2vl_tokenizer(str(tmp_path_factory.mktemp("tokenizer")))


@pytest.fixture(scope="session")
def tiny_model():
    from gme_data.retrieval.qwen2vl_configs import random_qwen2vl

    return random_qwen2vl("tiny", seed=0)


@pytest.fixture(scope="session")
def gme(tiny_model, qwen_tokenizer):
    from gme_data.retrieval.gme_qwen2vl import GmeQwen2VL

    return GmeQwen2VL(tiny_model, qwen_tokenizer, name="tiny-gme", min_image_tokens=4, max_image_tokens=64)


@pytest.fixture(scope="session")
def gme_mrope(tiny_model, qwen_tokenizer):
    from gme_data.retrieval.gme_qwen2vl import GmeQwen2VL

    return GmeQwen2VL(tiny_model, qwen_tokenizer, name="tiny-gme", min_image_tokens=4, max_image_tokens=64,
                      position_mode="mrope")


@pytest.fixture(scope="session")
def photos():
    from gme_data.retrieval.demo_photos import photo_caption_pairs

    return photo_caption_pairs()


@pytest.fixture(scope="session")
def offline(request):
    from gme_data.retrieval import load_embedder

    # the 1000 class-prompt embeddings are cached in pytest's cache folder between runs
    return load_embedder(prompt_cache_dir=str(request.config.cache.mkdir("gme_retrieval_prompts")))
