"""Every reported score names its instruction set, dataset revision and runtime profile.

The scores come from a real run: the tiny random Qwen2-VL under the ``reference`` profile (float16 on
CPU) over a local copy of a ViDoRe BEIR-format hub repository and a local-layout dataset.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from gme_data.evaluation.loaders import EvalDataset
from gme_data.evaluation.registry import get_spec
from gme_data.evaluation.report import load_results, markdown_report, write_reports
from gme_data.evaluation.runner import _revision, run_suite
from gme_data.records import Item

from .conftest import make_colour_t2i
from .test_hub_formats import write_hub_copy


@pytest.fixture(scope="module")
def tiny_reference(tmp_path_factory):
    from gme_data.retrieval.gme_profiles import get_profile
    from gme_data.retrieval.gme_qwen2vl import GmeQwen2VL
    from gme_data.retrieval.qwen2vl_configs import random_qwen2vl
    from gme_data.retrieval.qwen_tokenizer import build_qwen2vl_tokenizer

    tok = build_qwen2vl_tokenizer(str(tmp_path_factory.mktemp("tok")))
    prof = replace(get_profile("reference-mteb"), max_image_tokens=16)
    return GmeQwen2VL(random_qwen2vl("tiny", seed=0).half(), tok, name="tiny-gme", **prof.embedder_kwargs())


def test_report_names_instructions_revision_and_profile(tmp_path: Path, monkeypatch, tiny_reference) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("GME_DATA_HOME", str(tmp_path / "home"))
    root = tmp_path / "data"
    write_hub_copy(root / "vidore_docvqa", {
        "queries": {"test": [{"query-id": "0", "query": "What is the total?"}, {"query-id": "1", "query": "Who?"}]},
        "corpus": {"test": [{"corpus-id": "10", "image": Image.new("RGB", (40, 56), "white")},
                            {"corpus-id": "11", "image": Image.new("RGB", (40, 56), "gray")}]},
        "qrels": {"test": [{"query-id": "0", "corpus-id": "10", "score": 1.0},
                           {"query-id": "1", "corpus-id": "11", "score": 1.0}]},
    })
    make_colour_t2i(root / "flickr30k_t2i")  # a local-layout copy of a UMRB dataset (its own instruction)
    specs = [get_spec("vidore_docvqa"), get_spec("flickr30k_t2i")]
    result = run_suite(tiny_reference, specs, tmp_path / "out", suite="custom", data_root=root,
                       cache_dir=tmp_path / "cache", batch_size=4, show_progress=False, on_error="raise")
    vd, fl = result.datasets["vidore_docvqa"], result.datasets["flickr30k_t2i"]
    assert vd.runtime_profile == fl.runtime_profile == "reference-mteb / float16"
    assert vd.instruction_set == "gme-mteb@075873f9" and vd.revision == "local hub copy"
    assert fl.instruction_set == "gme-mteb@075873f9" and fl.revision == "local copy"
    assert 0.0 <= vd.main_score <= 100.0
    md = markdown_report(result)
    row = next(line for line in md.splitlines() if "`vidore_docvqa`" in line)
    assert f"{vd.main_score:.2f} / reference-mteb / float16" in row
    assert "gme-mteb@075873f9" in row and "local hub copy" in row
    summary = next(line for line in md.splitlines() if line.startswith("| tiny-gme |"))
    assert "reference-mteb / float16" in summary and "gme-mteb@075873f9" in summary
    # results.json keeps the provenance, and a reloaded result reports it again
    paths = write_reports(result, tmp_path / "report")
    saved = json.loads(paths["results"].read_text())["datasets"]["vidore_docvqa"]
    assert saved["runtime_profile"] == "reference-mteb / float16" and saved["instruction_set"] == "gme-mteb@075873f9"
    again = load_results(paths["results"])
    assert again.datasets["vidore_docvqa"].revision == "local hub copy"
    assert "reference-mteb / float16" in markdown_report(again)


def test_revision_column_values() -> None:
    spec = get_spec("llava")

    def part(source: str) -> EvalDataset:
        return EvalDataset("llava", {"q": Item(text="x", id="q")}, {"c": Item(text="y", id="c")}, {"q": {"c": 1}},
                           source=source)

    assert _revision(spec, [part(f"hf:izhx/UMRB-LLaVA@{spec.revision}")]) == spec.revision
    assert _revision(get_spec("scifact"), [part("hf:BeIR/scifact@latest")]) == "unpinned"
    assert _revision(spec, [part("/data/llava")]) == "local copy"
    md_rev = "`2a5ed414aab3`"
    from gme_data.evaluation.report import _short_rev

    assert _short_rev(spec.revision) == md_rev and _short_rev("unpinned") == "unpinned"


def test_partial_suite_is_labelled_as_a_stand_in(tmp_path: Path, embedder) -> None:
    make_colour_t2i(tmp_path / "colours")
    result = run_suite(embedder, [tmp_path / "colours"], tmp_path / "out", suite="umrb-partial",
                       cache_dir=tmp_path / "cache", show_progress=False)
    md = markdown_report(result)
    assert "not the published UMRB-Partial" in md and "47 of 47" in md
    row = next(line for line in md.splitlines() if "`colours`" in line)
    assert "/ n/a" in row and "local copy" in row


def test_edited_hub_copy_is_evaluated_again(tmp_path: Path, monkeypatch, embedder) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("GME_DATA_HOME", str(tmp_path / "home"))
    root = tmp_path / "data"

    def write(answer: str) -> None:
        write_hub_copy(root / "remuq", {
            "corpus": {"corpus": [{"id": "d1", "modality": "text", "text": "a red square", "image": None},
                                  {"id": "d2", "modality": "text", "text": "a blue square", "image": None}]},
            "query": {"test": [{"id": "q1", "modality": "image,text", "text": "which colour?",
                                "image": Image.new("RGB", (32, 32), (220, 30, 30))}]},
            "qrels": {"test": [{"query-id": "q1", "corpus-id": answer, "score": 1.0}]},
        })

    write("d1")
    kw = {"suite": "custom", "data_root": root, "cache_dir": tmp_path / "cache", "show_progress": False}
    first = run_suite(embedder, [get_spec("remuq")], tmp_path / "out", **kw).datasets["remuq"]
    write("d2")  # new parquet files: the stored result must not be reused
    second = run_suite(embedder, [get_spec("remuq")], tmp_path / "out", **kw).datasets["remuq"]
    assert first.settings_hash != second.settings_hash
    assert first.scores["hit@1"] + second.scores["hit@1"] == 100.0  # the judged answer moved: scored afresh
