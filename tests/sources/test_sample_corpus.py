"""The bundled sample corpus builds deterministically and reads back with its planted bad rows dropped."""

from __future__ import annotations

from collections import Counter

import pytest

from gme_data.candidates import DOMAINS
from gme_data.images import ImageStore
from gme_data.sample_corpus import CLEAN_SHARDS, build_sample_corpus, labelled_paragraphs, sample_source_specs
from gme_data.sources import read_source, read_sources


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    return root, build_sample_corpus(root, show_progress=False)


def _snapshot(root):
    return {p.relative_to(root): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_build_is_idempotent_and_repairs_tampered_files(built, tmp_path):
    root, manifests = built
    snap = _snapshot(root)
    assert build_sample_corpus(root, show_progress=False) == manifests
    assert _snapshot(root) == snap  # nothing rewritten
    assert [m.stem for m in manifests] == [*CLEAN_SHARDS, "dirty"]
    cat = root / "images" / "wiki_01" / "cat.png"
    cat.write_bytes(b"tampered")
    build_sample_corpus(root, show_progress=False)
    assert cat.read_bytes() == snap[cat.relative_to(root)][0]


def test_build_is_deterministic_across_folders(built, tmp_path):
    root, _ = built
    build_sample_corpus(tmp_path, show_progress=False)
    assert {k: v[0] for k, v in _snapshot(tmp_path).items()} == {k: v[0] for k, v in _snapshot(root).items()}


def test_sample_covers_all_domains_evenly():
    rows = labelled_paragraphs()
    counts = Counter(r["domain"] for r in rows)
    assert set(counts) == set(DOMAINS)
    assert 75 <= len(rows) <= 90 and min(counts.values()) >= 5 and max(counts.values()) <= 7
    assert all(2 <= r["text"].count(". ") + 1 <= 5 for r in rows)


def test_clean_shards_load_fully_and_dirty_shard_drops_planted_rows(built, tmp_path):
    root, manifests = built
    specs = sample_source_specs(manifests)
    store = ImageStore(tmp_path / "store")
    clean, clean_out = read_sources(specs[:3], store, show_progress=False)
    assert len(clean) == len(labelled_paragraphs()) and clean_out.drop_counts() == {}
    assert clean["image"].notna().sum() == 75  # every article's first paragraph has an image
    assert sorted(clean["shard"].unique()) == list(CLEAN_SHARDS)
    dirty, dirty_out = read_source(specs[3], store, show_progress=False)
    assert dirty_out.drop_counts() == {"wrong_type": 2, "unreadable_image": 1, "decompression_bomb": 1,
                                       "empty_text": 1, "empty_text_and_image": 1, "image_not_found": 1,
                                       "missing_field": 1}
    assert dirty["title"].tolist() == ["Lighthouse", "Lighthouse (copy)", "Lantern"]
    assert (root / "images" / "dirty" / "galaxy-survey.png").stat().st_size < 1000
