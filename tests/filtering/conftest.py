"""Fixtures for the fused_queries / filtered_samples tests: the real offline embedder (OCR off, for
speed), the real MiniLM text retriever, a small written sample and an image pool built once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.filtering import sample

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def embedder():
    from gme_data import load_embedder

    return load_embedder(ocr=False)


@pytest.fixture(scope="session")
def retriever():
    from gme_data.filtering import load_text_retriever

    return load_text_retriever()


@pytest.fixture(scope="session")
def images(tmp_path_factory) -> dict[str, str]:
    return sample.make_images(tmp_path_factory.mktemp("filtering") / "img")


@pytest.fixture(scope="session")
def candidates(images):
    return sample.make_candidates(images)


@pytest.fixture(scope="session")
def generated_queries():
    return sample.make_generated_queries()


@pytest.fixture(scope="session")
def pool(tmp_path_factory, embedder, candidates, images):
    """The candidates' images plus extra pool images (a full cat photo, coins, brick, moon, a drawing)."""
    from gme_data.pool import ImagePool, PoolConfig, PoolEntry

    p = ImagePool(Path(tmp_path_factory.mktemp("pool")) / "pool", embedder, PoolConfig(show_progress=False))
    p.add(candidates)
    p.add([PoolEntry(image=images[n], entity=n.replace("_", " ")) for n in sample.POOL_EXTRA])
    return p


@pytest.fixture(scope="session")
def fused(generated_queries, candidates, pool):
    from gme_data.filtering import build_fused_queries

    return build_fused_queries(generated_queries, candidates, pool)


@pytest.fixture(scope="session")
def filtered(fused, candidates, retriever):
    from gme_data.filtering import filter_samples

    return filter_samples(fused.table, candidates, text_retriever=retriever)
