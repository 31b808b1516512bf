"""The offline local suite: builds from bundled data, loads, and its relevance is what it claims."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gme_data.evaluation.loaders import load_local
from gme_data.evaluation.local_suite import PHOTOS, build_local_suite, easyvqa_attributes, module_documents
from gme_data.evaluation.registry import LOCAL_REGISTRY

TINY = {"n_images": 12, "n_vqa_queries": 6, "n_docs": 4, "n_photos": 6}


@pytest.fixture(scope="module")
def tiny_suite(tmp_path_factory) -> dict[str, Path]:
    return build_local_suite(tmp_path_factory.mktemp("suite") / "local", **TINY)


def test_builds_every_dataset_and_loads(tiny_suite: dict[str, Path]) -> None:
    assert list(tiny_suite) == list(LOCAL_REGISTRY)
    for slug, path in tiny_suite.items():
        data = load_local(path)
        spec = LOCAL_REGISTRY[slug]
        assert data.name == slug and data.task == spec.task and data.metric == spec.metric
        assert data.instruction == spec.instruction
        assert data.queries and data.corpus and set(data.qrels) == set(data.queries)
        q_mod = {it.modality for it in data.queries.values()}
        c_mod = {it.modality for it in data.corpus.values()}
        expected = {"T": "text", "I": "image", "IT": "fused", "VD": "image"}
        qt, ct = spec.task.split("->")
        assert q_mod == {expected[qt]} and c_mod == {expected[ct]}, slug


def test_sizes_follow_the_parameters(tiny_suite: dict[str, Path]) -> None:
    sizes = {s: load_local(p).summary() for s, p in tiny_suite.items()}
    assert sizes["local_easyvqa_t2i"]["candidates"] == 12
    assert sizes["local_easyvqa_it2t"]["queries"] == 6 and sizes["local_easyvqa_it2t"]["candidates"] <= 13
    assert sizes["local_docs_t2t"]["queries"] == 4 and sizes["local_docpages_t2vd"]["candidates"] == 4
    assert sizes["local_photos_t2i"]["queries"] == 6 == sizes["local_photos_i2t"]["candidates"]


def test_easyvqa_relevance_matches_metadata(tiny_suite: dict[str, Path]) -> None:
    attrs = easyvqa_attributes()
    data = load_local(tiny_suite["local_easyvqa_t2i"])
    for qid, judged in data.qrels.items():
        colour, shape = qid.split("-")
        assert f"{colour} {shape}" in data.queries[qid].text
        for cid in judged:
            a = attrs[int(cid[3:])]
            assert (a["color"], a["shape"]) == (colour, shape)
    vqa = load_local(tiny_suite["local_easyvqa_it2t"])
    for qid, judged in vqa.qrels.items():
        (answer,) = [vqa.corpus[c].text for c in judged]
        assert (vqa.queries[qid].text, answer) in attrs[int(qid[1:])]["qa"]


def test_documents_hide_the_summary_from_the_page() -> None:
    docs = module_documents(["heapq", "json"])
    assert [m for m, _, _ in docs] == ["heapq", "json"]
    for _, summary, body in docs:
        assert summary and summary not in body


def test_rebuild_is_skipped_when_unchanged(tiny_suite: dict[str, Path]) -> None:
    root = next(iter(tiny_suite.values())).parent
    marker = root / "local_docs_t2t" / "queries.jsonl"
    before = marker.stat().st_mtime_ns
    build_local_suite(root, **TINY)
    assert marker.stat().st_mtime_ns == before
    assert json.loads((root / "suite.json").read_text())["params"]["n_photos"] == 6
    assert len(PHOTOS) >= 20
