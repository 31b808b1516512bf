"""benchmarks/synthesis_scale.py: its corpus writer and a tiny end-to-end run against a baseline revision."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import imagehash
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))
from synthesis_corpus import write_corpus  # noqa: E402


def test_corpus_has_distinct_paragraphs_and_images(tmp_path):
    manifest = write_corpus(90, tmp_path, seed=3)
    articles = [json.loads(line) for line in manifest.read_text().splitlines()]
    texts = [a["paragraphs"][0]["text"] for a in articles]
    assert len(articles) == 90 and len(set(texts)) == 90
    assert len({t.split(".")[0] for t in texts}) >= 85  # not copies with a tail changed
    paths = [a["paragraphs"][0]["images"][0]["path"] for a in articles if a["paragraphs"][0]["images"]]
    assert len(paths) == 30 and {Path(p).suffix for p in paths} == {".png", ".jpg"}
    hashes = [imagehash.phash(Image.open(p)) for p in paths]
    closest = min(a - b for i, a in enumerate(hashes) for b in hashes[i + 1:])
    assert closest > 6  # beyond the candidates stage's pHash duplicate distance
    assert write_corpus(90, tmp_path / "again", seed=3).read_text().replace(str(tmp_path / "again"), "") == \
        manifest.read_text().replace(str(tmp_path), "")


def test_benchmark_runs_end_to_end_against_a_baseline_rev(tmp_path):
    out = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "synthesis_scale.py"), "--sizes", "9",
                           "--baseline", "HEAD", "--workdir", str(tmp_path / "work"), "--json", str(out)],
                          capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(out.read_text())
    assert [r["code_label"] for r in results] == ["ours", "baseline HEAD"]
    for r in results:
        assert not r["failed"] and r["rows"]["raw_corpus"] == 9 and r["peak_rss_mb"] > 100
        assert set(r["stage_s"]) == {"raw_corpus", "candidates", "generated_queries", "fused_queries",
                                     "filtered_samples"}
    ours, base = results
    assert Path(base["code"]).name == "tree" and Path(ours["code"]) == REPO
    for stage in ("raw_corpus", "candidates", "generated_queries", "fused_queries", "filtered_samples"):
        assert ours["metadata"][stage]["items_per_s"] > 0  # every synthesis asset reports its throughput
    # the consistency filter reuses the classifier's paragraph vectors (one process: from the memo)
    assert ours["metadata"]["filtered_samples"]["vector_memo_hits"] >= ours["rows"]["candidates"]
    assert "| paragraphs |" in proc.stdout and "end to end" in proc.stdout
    assert not (tmp_path / "work" / "home-ours-9").exists()
