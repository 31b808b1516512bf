"""The UMRB registry: 47 datasets, fields, presets and selection."""

from __future__ import annotations

import pytest

from gme_data.evaluation import metrics as M
from gme_data.evaluation.errors import UnknownDatasetError
from gme_data.evaluation.registry import (
    CATEGORIES,
    LOCAL_SUITE,
    PARTIAL,
    PARTIAL_LABEL,
    PARTIAL_PUBLISHED,
    PARTIAL_UNVERIFIED,
    REGISTRY,
    TASK_CATEGORY,
    TASKS,
    UMRB,
    counts_by_task,
    get_spec,
    select,
)
from gme_data.evaluation.report import PUBLISHED, published_overall


def test_47_datasets_with_the_umrb_md_breakdown() -> None:
    assert len(UMRB) == 47
    assert len(REGISTRY) == 47  # slugs unique
    assert counts_by_task() == {"T->T": 16, "I->I": 1, "T->I": 4, "T->VD": 10, "I->T": 4, "T->IT": 2,
                                "IT->T": 5, "IT->I": 2, "IT->IT": 3}
    beir = [s for s in UMRB if s.source == "beir"]
    assert len(beir) == 15 and all(s.metric == "NDCG@10" for s in beir)


def test_fields_are_complete_and_consistent() -> None:
    from gme_data.retrieval.instructions import get_instruction

    for s in UMRB:
        assert s.category == TASK_CATEGORY[s.task] and s.category in CATEGORIES
        q, c = s.task.split("->")
        assert s.query_modality == {"T": "text", "I": "image", "IT": "fused"}[q]
        assert s.candidate_modality == {"T": "text", "I": "image", "IT": "fused", "VD": "image"}[c]
        assert s.metric in ("NDCG@10", "NDCG@5", "Recall@5", "Recall@10")
        fam, k = M.parse_metric(s.metric_key)
        assert fam in ("ndcg", "hit") and k in (5, 10)  # UMRB Recall@k = UniIR hit rate
        assert s.instruction == get_instruction(s.slug)
        if s.source == "beir":
            assert s.hub_id.startswith(("BeIR/", "mteb/"))
        elif s.source == "vidore-beir":
            assert s.hub_id.startswith("vidore/") and s.hub_id.endswith("_beir")
            assert s.metric == "NDCG@5" and s.task == "T->VD" and len(s.revision) == 40
        elif s.source == "mbeir":
            assert s.hub_id == "TIGER-Lab/M-BEIR"
            assert s.options["queries"].startswith("query/test/mbeir_") and "cand_pool/local/" in s.options["pool"]
        else:
            assert s.source == "any2any" and s.hub_id.startswith(("izhx/UMRB-", "mteb/flickr30k"))
            assert len(s.revision) == 40 and s.origin
        d = s.to_dict()
        assert {"slug", "category", "task", "query_modality", "candidate_modality", "metric", "instruction",
                "hub_id"} <= set(d)


@pytest.mark.parametrize(("slug", "metric"), [
    ("scifact", "NDCG@10"), ("webqa_t2t", "Recall@5"), ("nights", "Recall@5"), ("fashion200k_t2i", "Recall@10"),
    ("fashion200k_i2t", "Recall@10"), ("vidore_tabfquad", "NDCG@5"), ("okvqa", "Recall@10"),
    ("fashioniq", "Recall@10"), ("cirr", "Recall@5"), ("evqa", "Recall@5"), ("edis", "Recall@5"),
])
def test_metrics_follow_umrb_md(slug: str, metric: str) -> None:
    assert get_spec(slug).metric == metric


def test_published_averages_match_the_registry_counts() -> None:
    # GME's averages are plain means over the 47 datasets: task means weighted by our counts give them
    for model in ("GME-2B", "GME-7B"):
        assert published_overall(model) == pytest.approx(PUBLISHED[model]["avg"], abs=0.02)
    # the baseline rows of the paper do not add up exactly (within a point): kept as printed
    for model in PUBLISHED:
        assert published_overall(model) == pytest.approx(PUBLISHED[model]["avg"], abs=1.0)


def test_partial_preset_spans_every_category_and_task() -> None:
    # the paper's "In partial" column could not be read: every entry is flagged unverified and labelled so
    assert PARTIAL_PUBLISHED == {} and PARTIAL_UNVERIFIED == tuple(REGISTRY)
    assert "not the published UMRB-Partial" in PARTIAL_LABEL and "47 of 47" in PARTIAL_LABEL
    specs = select("umrb-partial")
    assert [s.slug for s in specs] == [s.slug for s in UMRB if s.slug in PARTIAL]
    assert 18 <= len(specs) <= 19 and 0.35 <= len(specs) / 47 <= 0.42
    assert {s.category for s in specs} == set(CATEGORIES)
    assert {s.task for s in specs} == set(TASKS)


def test_selection() -> None:
    assert [s.slug for s in select(tasks=["T->VD"])] == [s.slug for s in UMRB if s.task == "T->VD"]
    assert {s.task for s in select(tasks=["t2i", "IT2T"])} == {"T->I", "IT->T"}
    assert {s.task for s in select(categories=["fused-modal"])} == {"T->IT", "IT->T", "IT->I", "IT->IT"}
    assert {s.task for s in select(categories=["visual-document"])} == {"T->VD"}
    assert {s.task for s in select(categories=["single"])} == {"T->T", "I->I"}
    assert [s.slug for s in select(names=["nights", "scifact"])] == ["scifact", "nights"]  # registry order
    assert [s.slug for s in select("umrb-partial", tasks=["T->T"])] == ["arguana", "fiqa", "nfcorpus", "scifact",
                                                                        "webqa_t2t"]
    assert len(select("umrb")) == 47 and len(select()) == 47
    assert [s.slug for s in select("local")] == [s.slug for s in LOCAL_SUITE]
    assert {s.task for s in LOCAL_SUITE} == set(TASKS)  # every UMRB task, offline


@pytest.mark.parametrize("kwargs", [
    {"preset": "nope"}, {"tasks": ["X->Y"]}, {"categories": ["weird"]}, {"names": ["scifakt"]},
    {"preset": "umrb-partial", "names": ["msmarco"]}, {"preset": "local", "names": ["local_docs_t2t"], "tasks": ["IT->IT"]},
])
def test_selection_errors(kwargs) -> None:
    with pytest.raises(UnknownDatasetError):
        select(**kwargs)


def test_unknown_slug_suggests() -> None:
    with pytest.raises(UnknownDatasetError, match="scifact"):
        get_spec("scifakt")
