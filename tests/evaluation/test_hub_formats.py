"""The dataset copies GME's code evaluates: ids/revisions pinned, and their two hub formats read offline.

Each test writes a small copy of a hub dataset repository the way the hub stores it (a README.md
dataset card declaring the configs, parquet files written by ``datasets`` with real PNG images) and
loads it through the registry, with the hub switched off.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from gme_data.evaluation.errors import BadRowError, DatasetUnavailableError
from gme_data.evaluation.loaders import _hub_ref, is_hub_copy, load_spec
from gme_data.evaluation.registry import UMRB, get_spec

#: (slug, hub id, revision) as GME's evaluation code pins them.
GME_COPIES = [
    # izhx/mteb@ff74380542e3942b7e60e782636dc2aa7a4c0d3e mteb/tasks/Image/Any2AnyRetrieval/eng/VidoreBenchRetrieval.py
    ("vidore_tatdqa", "vidore/tatdqa_test_beir", "5feb5630fdff4d8d189ffedb2dba56862fdd45c0"),
    ("vidore_arxivqa", "vidore/arxivqa_test_subsampled_beir", "7d94d570960eac2408d3baa7a33f9de4822ae3e4"),
    ("vidore_docvqa", "vidore/docvqa_test_subsampled_beir", "162ba2fc1a8437eda8b6c37b240bc1c0f0deb092"),
    ("vidore_infovqa", "vidore/infovqa_test_subsampled_beir", "b802cc5fd6c605df2d673a963667d74881d2c9a4"),
    ("vidore_shift_project", "vidore/shiftproject_test_beir", "84a382e05c4473fed9cff2bbae95fe2379416117"),
    ("vidore_ai", "vidore/syntheticDocQA_artificial_intelligence_test_beir",
     "2d9ebea5a1c6e9ef4a3b902a612f605dca11261c"),
    ("vidore_government_reports", "vidore/syntheticDocQA_government_reports_test_beir",
     "b4909afa930f81282fd20601e860668073ad02aa"),
    ("vidore_healthcare", "vidore/syntheticDocQA_healthcare_industry_test_beir",
     "f9e25d5b6e13e1ad9f5c3cce202565031b3ab164"),
    ("vidore_energy", "vidore/syntheticDocQA_energy_test_beir", "9935aadbad5c8deec30910489db1b2c7133ae7a7"),
    ("vidore_tabfquad", "vidore/tabfquad_test_subsampled_beir", "61a2224bcd29b7b261a4892ff4c8bea353527a31"),
    # izhx/mteb@24c37098b71b8cf81922098d3dd11fed51205889 mteb/tasks/Image/Any2AnyRetrieval/eng/*.py
    ("remuq", "izhx/UMRB-ReMuQ", "f0bd5955d2897bd1bed56546e88082d966c90a80"),
    ("llava", "izhx/UMRB-LLaVA", "2a5ed414aab388d8cdd244ba2cf8c8960df4d44d"),
    ("okvqa", "izhx/UMRB-OKVQA", "96a84a043f5465893670cf616f90e64086c0417a"),
    ("evqa", "izhx/UMRB-EncyclopediaVQA", "d6eae4f06e260664eb3f276fd1bdb5d4d4c9f32b"),
    # embeddings-benchmark/mteb@a905523d0111f999360b312bd4a601a0a97a0e1c mteb/tasks/retrieval/eng/flickr30k_*.py
    ("flickr30k_t2i", "mteb/flickr30kt2i", "e819702b287bfbe084e129a61f308a802b7c108e"),
    ("flickr30k_i2t", "mteb/flickr30ki2t", "e26fbfcb4532ab61e3c8512fdf3dd9008f2575bd"),
]


def test_registry_pins_gmes_copies_with_their_origin() -> None:
    for slug, hub, rev in GME_COPIES:
        spec = get_spec(slug)
        assert (spec.hub_id, spec.revision) == (hub, rev), slug
        assert spec.source == ("vidore-beir" if slug.startswith("vidore_") else "any2any")
        repo, _, path = spec.origin.partition(":")
        assert "@" in repo and len(repo.split("@")[1]) == 40 and path.endswith(".py")
        assert spec.to_dict()["revision"] == rev
    # nothing in UMRB is "local only" any more: every dataset names a public source
    assert all(s.source in ("beir", "mbeir", "vidore-beir", "any2any") and s.hub_id for s in UMRB)


def _img(colour: tuple[int, int, int], size: tuple[int, int] = (24, 16)) -> Image.Image:
    return Image.new("RGB", size, colour)


def write_hub_copy(root: Path, configs: dict[str, dict[str, list[dict[str, Any]]]]) -> Path:
    """A hub dataset repository on disk: ``<config>/<split>-00000-of-00001.parquet`` + README.md configs."""
    from datasets import Dataset, Features, Value
    from datasets import Image as HFImage

    card = ["---", "configs:"]
    for config, splits in configs.items():
        card += [f"- config_name: {config}", "  data_files:"]
        for split, rows in splits.items():
            cols = list(rows[0])
            feats = Features({c: HFImage() if c == "image" else Value("float64" if c == "score" else "string")
                              for c in cols})
            data = {c: [r.get(c) for r in rows] for c in cols}
            if "score" not in cols:
                data = {c: v if c == "image" else [None if x is None else str(x) for x in v] for c, v in data.items()}
            out = root / config / f"{split}-00000-of-00001.parquet"
            out.parent.mkdir(parents=True, exist_ok=True)
            Dataset.from_dict(data, features=feats).to_parquet(str(out))
            card += [f"  - split: {split}", f"    path: {config}/{split}-*.parquet"]
    card.append("---")
    (root / "README.md").write_text("\n".join(card) + "\n")
    return root


@pytest.fixture
def offline(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("GME_DATA_HOME", str(tmp_path / "home"))


def test_any2any_fused_queries_text_corpus(tmp_path: Path, offline) -> None:
    """izhx/UMRB-ReMuQ layout: image+text queries -> text passages; unjudged queries are dropped."""
    root = write_hub_copy(tmp_path / "remuq", {
        "corpus": {"corpus": [{"id": "d1", "modality": "text", "text": "The Eiffel Tower is in Paris.", "image": None},
                              {"id": "d2", "modality": "text", "text": "Big Ben is in London.", "image": None}]},
        "query": {"test": [{"id": "q1", "modality": "image,text", "text": "Where is this tower?",
                            "image": _img((200, 0, 0))},
                           {"id": "q2", "modality": "image,text", "text": "no judgement", "image": _img((0, 0, 9))}]},
        "qrels": {"test": [{"query-id": "q1", "corpus-id": "d1", "score": 1.0}]},
    })
    assert is_hub_copy(root)
    (data,) = load_spec(get_spec("remuq"), data_root=tmp_path)
    assert list(data.queries) == ["q1"] and data.qrels == {"q1": {"d1": 1}}
    q = data.queries["q1"]
    assert q.modality == "fused" and q.text == "Where is this tower?" and q.load_image().size == (24, 16)
    assert q.load_image().getpixel((0, 0)) == (200, 0, 0)
    assert {c.modality for c in data.corpus.values()} == {"text"}
    assert data.instruction == ("Retrieve a fact-based paragraph that provides an answer to the given query "
                                "about the image.")
    assert data.source == f"copy:{root}" and data.task == "IT->T" and data.metric == "Recall@5"
    assert len(data.corpus_fingerprint()) == 40


def test_any2any_v2_config_names_image_queries(tmp_path: Path, offline) -> None:
    """mteb/flickr30ki2t: image queries -> captions, with MTEB v2's ``queries``/``default`` config names."""
    write_hub_copy(tmp_path / "flickr30k_i2t", {
        "corpus": {"corpus": [{"id": "c1", "modality": "text", "text": "a red square", "image": None},
                              {"id": "c2", "modality": "text", "text": "a blue square", "image": None}]},
        "queries": {"test": [{"id": "i1", "modality": "image", "text": None, "image": _img((0, 0, 250))}]},
        "default": {"test": [{"query-id": "i1", "corpus-id": "c2", "score": 1.0}]},
    })
    (data,) = load_spec(get_spec("flickr30k_i2t"), data_root=tmp_path)
    assert data.queries["i1"].modality == "image" and data.qrels == {"i1": {"c2": 1}}
    assert data.instruction == "Find an image caption describing the following image."


def test_vidore_beir_copy(tmp_path: Path, offline) -> None:
    """vidore/*_test_beir: queries (query-id, query), corpus (corpus-id, image), qrels; integer ids work."""
    write_hub_copy(tmp_path / "vidore_docvqa", {
        "queries": {"test": [{"query-id": 0, "query": "What is the total?"}, {"query-id": 1, "query": "Who signed?"},
                             {"query-id": 2, "query": "unjudged"}]},
        "corpus": {"test": [{"corpus-id": 10, "image": _img((255, 255, 255), (20, 30))},
                            {"corpus-id": 11, "image": _img((250, 250, 250), (20, 30))}]},
        "qrels": {"test": [{"query-id": 0, "corpus-id": 10, "score": 1.0},
                           {"query-id": 1, "corpus-id": 11, "score": 1.0},
                           {"query-id": 1, "corpus-id": 99, "score": 1.0}]},
    })
    (data,) = load_spec(get_spec("vidore_docvqa"), data_root=tmp_path)
    assert data.qrels == {"0": {"10": 1}, "1": {"11": 1}} and list(data.queries) == ["0", "1"]
    assert data.corpus["10"].modality == "image" and data.corpus["10"].load_image().size == (20, 30)
    assert data.instruction == "Find a screenshot that relevant to the user's question."
    assert data.metric == "NDCG@5" and data.task == "T->VD"


def test_bad_copies_raise_named_errors(tmp_path: Path, offline) -> None:
    write_hub_copy(tmp_path / "llava", {
        "corpus": {"corpus": [{"id": "d1", "modality": "text", "text": "", "image": None}]},
        "query": {"test": [{"id": "q1", "modality": "image,text", "text": "what?", "image": _img((1, 2, 3))}]},
        "qrels": {"test": [{"query-id": "q1", "corpus-id": "d1", "score": 1.0}]},
    })
    with pytest.raises(BadRowError, match=r"corpus 'd1': modality 'text' but its text is empty") as ei:
        load_spec(get_spec("llava"), data_root=tmp_path)
    assert "llava" in str(ei.value) and ei.value.line == 1
    write_hub_copy(tmp_path / "okvqa", {
        "corpus": {"corpus": [{"id": "d1", "modality": "text", "text": "passage", "image": None}]},
        "qrels": {"test": [{"query-id": "q1", "corpus-id": "d1", "score": 1.0}]},
    })
    with pytest.raises(DatasetUnavailableError, match=r"none of the configs \['query', 'queries'\]"):
        load_spec(get_spec("okvqa"), data_root=tmp_path)


def test_without_a_copy_the_hub_is_asked_at_the_pinned_revision(tmp_path: Path, offline) -> None:
    spec = get_spec("evqa")
    ref = _hub_ref(spec, tmp_path / "evqa")
    assert (ref.path, ref.revision, ref.local_copy) == ("izhx/UMRB-EncyclopediaVQA", spec.revision, False)
    assert ref.label == "hf:izhx/UMRB-EncyclopediaVQA@d6eae4f06e260664eb3f276fd1bdb5d4d4c9f32b"
    with pytest.raises(DatasetUnavailableError, match="offline") as ei:
        load_spec(spec, data_root=tmp_path)
    assert "izhx/UMRB-EncyclopediaVQA" in str(ei.value) and str(tmp_path / "evqa") in str(ei.value)
