"""A CLIP-family model evaluated by name: the report shows its CLIP-SF row beside the published one."""

from __future__ import annotations

from pathlib import Path

from gme_data.evaluation.api import umrb_eval
from gme_data.evaluation.report import CLIP_SF_PUBLISHED, PUBLISHED, is_clip_sf, markdown_report
from gme_data.retrieval.clip_tiny import save_tiny_clip_family

from .conftest import make_colour_t2i


def test_clip_model_by_name_gets_a_workbench_clip_sf_row(tmp_path: Path, embedder) -> None:
    folder = save_tiny_clip_family(tmp_path / "tiny_clip", "clip", seed=1)
    data = make_colour_t2i(tmp_path / "colours")
    result, paths = umrb_eval(str(folder), tmp_path / "out", data_dirs=[data], cache_dir=tmp_path / "cache",
                              show_progress=False, on_error="raise", compare=[embedder])
    assert result.model == f"clip:{folder}" and is_clip_sf(result)
    assert result.runtime_profiles == ["clip-sf / float32"]
    lines = paths["markdown"].read_text().splitlines()
    ours = next(i for i, line in enumerate(lines) if line.startswith(f"| CLIP-SF (workbench: clip:{folder}) |"))
    # the non-CLIP comparison keeps its own name; the published CLIP-SF row follows the runs directly
    assert lines[ours + 1].startswith("| test-minilm-colourhist |")
    assert lines[ours + 2].startswith(f"| {CLIP_SF_PUBLISHED} (published) |")
    assert f"{PUBLISHED[CLIP_SF_PUBLISHED]['avg']:.2f}" in lines[ours + 2]
    assert f"{result.overall:.2f}" in lines[ours]
    # a run by another embedder gets no workbench CLIP-SF label
    assert "workbench" not in markdown_report(result.__class__(model="x", suite="s", datasets={}))
