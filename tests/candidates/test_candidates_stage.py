"""build_candidates on the sample corpus: dedup, domain confidence filter, balance, lineage, ids."""

from __future__ import annotations

import pandas as pd
import pytest

from gme_data.candidates import CANDIDATE_COLUMNS, DOMAINS, CandidatesConfig, build_candidates, normalise_text
from gme_data.errors import InvalidInputError
from gme_data.records import stable_id


def test_output_table_and_report(sample_raw, sample_candidates):
    table, out, report = sample_candidates
    assert list(table.columns) == list(CANDIDATE_COLUMNS)
    assert report["n_raw"] == len(sample_raw) == len(out.records)
    assert report["n_candidates"] == len(table) == sum(r.status == "kept" for r in out.records)
    assert set(table["domain"]) <= set(DOMAINS) and len(set(table["domain"])) == len(DOMAINS)
    assert (table["domain_confidence"] >= 0.5).all()
    assert sum(report["per_domain"].values()) == len(table)
    assert table["id"].is_unique
    assert all(v is None or isinstance(v, str) for col in ("title", "text", "image", "url") for v in table[col])


def test_exact_text_duplicate_and_near_duplicate_image_dropped(sample_raw, sample_candidates):
    table, out, _ = sample_candidates
    drops = {r.record_id: r for r in out.records if r.status == "dropped"}
    by_title = dict(zip(sample_raw["title"], sample_raw["id"], strict=False))
    copy = drops[stable_id("cand", by_title["Lighthouse (copy)"])]
    assert copy.reason == "exact_duplicate_text"
    assert copy.payload["duplicate_of"] == stable_id("cand", by_title["Lighthouse"])
    lantern = drops[stable_id("cand", by_title["Lantern"])]
    assert lantern.reason == "near_duplicate_image" and lantern.score <= 6
    assert "Lighthouse" in set(table["title"])
    near = [r for r in out.records if r.reason == "near_duplicate_image"]
    assert len(near) == 1  # the 76 other (distinct) sample images are not near-duplicates of each other
    raw_image = {stable_id("cand", rid): img for rid, img in zip(sample_raw["id"], sample_raw["image"], strict=True)}
    assert all(img == raw_image[cid] for cid, img in zip(table["id"], table["image"], strict=True))


def test_lineage_parents_are_raw_ids(sample_raw, sample_candidates):
    table, out, _ = sample_candidates
    raw_ids = set(sample_raw["id"])
    kept_edges = [e for e in out.edges if e.decision == "kept"]
    assert len(kept_edges) == len(table)
    assert all(e.stage == "candidates" and e.parent_id in raw_ids for e in out.edges)
    assert {e.child_id for e in kept_edges} == set(table["id"])
    low = [r for r in out.records if r.reason == "low_domain_confidence"]
    assert all(r.score < 0.5 and r.payload["domain"] in DOMAINS for r in low)


def test_threshold_changes_what_is_kept(sample_raw):
    subset = sample_raw[sample_raw["shard"] == "wiki_01"].head(20).reset_index(drop=True)
    loose, _, loose_report = build_candidates(subset, CandidatesConfig(threshold=0.0, show_progress=False))
    strict, strict_out, _ = build_candidates(subset, CandidatesConfig(threshold=0.999, show_progress=False))
    assert len(loose) == 20 and loose_report["drops"] == {}
    assert 0 < len(strict) < len(loose)
    cut = loose[loose["domain_confidence"] < 0.999]
    assert set(cut["id"]) == {r.record_id for r in strict_out.records if r.reason == "low_domain_confidence"}
    assert loose["id"].tolist()[: len(strict)] != [] and set(strict["id"]) <= set(loose["id"])


def test_balance_caps_each_domain_keeping_the_most_confident(sample_raw, sample_candidates):
    full, _, _ = sample_candidates
    subset = sample_raw[sample_raw["id"].isin(_raw_ids_for(full, sample_raw))]
    capped, out, report = build_candidates(subset.reset_index(drop=True),
                                           CandidatesConfig(max_per_domain=2, show_progress=False))
    assert capped.groupby("domain").size().max() == 2 and report["balance_cap"] == 2
    balance_drops = [r for r in out.records if r.reason == "domain_balance"]
    assert len(balance_drops) == len(subset) - len(capped)
    for r in balance_drops:
        kept_conf = capped.loc[capped["domain"] == r.payload["domain"], "domain_confidence"]
        assert len(kept_conf) == 2 and (kept_conf >= r.score).all()


def _raw_ids_for(candidates: pd.DataFrame, raw: pd.DataFrame) -> set[str]:
    by_cand = {stable_id("cand", rid): rid for rid in raw["id"]}
    return {by_cand[c] for c in candidates["id"]}


def test_ids_are_deterministic(sample_raw):
    subset = sample_raw.head(6)
    a, _, _ = build_candidates(subset, CandidatesConfig(show_progress=False))
    b, _, _ = build_candidates(subset.copy(), CandidatesConfig(show_progress=False))
    assert a["id"].tolist() == b["id"].tolist() and not a.empty
    pd.testing.assert_frame_equal(a, b)


def test_normalise_text():
    assert normalise_text("  Cafe\u0301 \n\t au  lait ") == "Caf\u00e9 au lait"
    assert normalise_text("   ") is None and normalise_text(None) is None


def test_bad_input_is_named():
    with pytest.raises(InvalidInputError, match="lacks column"):
        build_candidates(pd.DataFrame({"id": ["a"], "text": ["x"]}))
    with pytest.raises(InvalidInputError, match="threshold"):
        CandidatesConfig(threshold=1.5)
