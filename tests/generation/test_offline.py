"""The offline (rule-based) backend end to end on realistic paragraphs from the 15 domains."""

from __future__ import annotations

import pandas as pd
import pytest

from gme_data.generation import (
    DOMAINS,
    GENERIC_REFERENCE,
    GenerationConfig,
    canonical_domain,
    generate_queries,
    generic_reference,
    offline_doc2query,
)
from gme_data.generation.quality import leaked_tokens
from gme_data.generation.stage import OUTPUT_COLUMNS, STAGE
from gme_data.lineage import LineageStore
from tests.generation.conftest import PARAGRAPHS, candidates_frame


def test_every_domain_has_a_generic_reference_and_a_sample_paragraph():
    assert len(DOMAINS) == 15
    assert all(ref.startswith("this ") for ref in GENERIC_REFERENCE.values())
    assert {canonical_domain(d) for _, d, _ in PARAGRAPHS} == set(DOMAINS)


def test_offline_run_produces_each_style_without_entity_leaks(tmp_path):
    cands = candidates_frame(tmp_path)
    table, lineage, report = generate_queries(cands, GenerationConfig(backend="offline-rules"), show_progress=False)
    assert list(table.columns) == list(OUTPUT_COLUMNS)
    assert report.drops_by_reason == {} and report.requests == 0
    assert report.kept_by_style == {"t2t": 15, "fused": 15, "t2i": 8}
    assert report.skipped == {"t2i:no_image": 7}
    fused = table[table["style"] == "fused"]
    for row in fused.itertuples():
        assert row.entity.lower() in row.query.lower()  # the original names the entity...
        assert not leaked_tokens(row.entity, row.rewritten_query), row.rewritten_query  # ...the rewrite never
        assert row.entity.lower() not in row.rewritten_query.lower()
        assert " this " in f" {row.rewritten_query.lower()}"
        assert row.query.endswith("?") and row.rewritten_query.endswith("?")
        assert row.answer and row.answer.lower() != row.query.lower()
    assert set(table["model"]) == {"offline-rules@v1"}
    assert table["prompt_version"].str.match(r"^offline-rules@v1\+[0-9a-f]{8}$").all()
    assert {e.parent_id for e in lineage.edges} == set(cands["id"])
    assert all(e.stage == STAGE for e in lineage.edges)
    # deterministic: same ids and texts on a second run
    again = generate_queries(cands, GenerationConfig(backend="offline-rules"), show_progress=False).table
    assert again.equals(table)


@pytest.mark.parametrize(("title", "expected_query", "expected_answer", "expected_rewrite"), [
    ("Golden Gate Bridge", "Who designed the Golden Gate Bridge?", "Joseph Strauss", "Who designed this bridge?"),
    ("Battle of Hastings", "When was the Battle of Hastings fought?", "14 October 1066",
     "When was this battle fought?"),
    ("Marie Curie", "Where was Marie Curie born?", "Warsaw", "Where was this person born?"),
    ("Koala", "Where is the koala found?", "coastal areas of the mainland's eastern and southern regions",
     "Where is this animal found?"),
    ("Eiffel Tower", "How tall is the Eiffel Tower?", "330 metres", "How tall is this tower?"),
    ("Stradivarius", "What is a Stradivarius?", "one of the violins", "What is this instrument?"),
    ("Mona Lisa", "Where is the Mona Lisa located?", "the Louvre in Paris", "Where is this portrait located?"),
    ("Toyota", "Who founded Toyota?", "Kiichiro Toyoda", "Who founded this company?"),
    ("Beatles", "What were the Beatles?", "an English rock band formed in Liverpool in 1960", "What was this band?"),
    ("Mount Kilimanjaro", "What is Mount Kilimanjaro?", "a dormant volcano in Tanzania", "What is this volcano?"),
])
def test_offline_questions_are_sensible(title, expected_query, expected_answer, expected_rewrite):
    texts = {t: (d, x) for t, d, x in PARAGRAPHS}
    texts["Golden Gate Bridge"] = ("architecture & landmarks",
                                   "The Golden Gate Bridge is a suspension bridge spanning the Golden Gate strait. "
                                   "The bridge was opened in 1937. It was designed by Joseph Strauss.")
    texts["Beatles"] = ("music & entertainment", "The Beatles were an English rock band formed in Liverpool in 1960.")
    domain, text = texts[title]
    made = offline_doc2query(title, text, domain)
    assert (made.query, made.answer, made.rewritten_query) == (expected_query, expected_answer, expected_rewrite)


def test_entity_from_first_sentence_when_there_is_no_title():
    made = offline_doc2query(None, "The Eiffel Tower is a wrought-iron lattice tower in Paris. "
                                   "It was designed by Gustave Eiffel's engineers.", "architecture_and_landmarks")
    assert made.entity == "Eiffel Tower"
    assert made.rewritten_query == "Who designed this tower?"


def test_one_word_entity_is_not_its_own_generic_reference():
    assert generic_reference("everyday objects", "a folding canopy", "Umbrella") == "this object"
    assert generic_reference("architecture & landmarks", "", "Golden Gate Bridge") == "this bridge"
    assert generic_reference("unknown domain") == "this subject"


def test_lineage_round_trips_through_the_duckdb_store(tmp_path):
    cands = candidates_frame(tmp_path, n=3)
    cands.loc[2, "title"] = None
    cands.loc[2, "text"] = "42"  # no entity can be found: dropped with a reason, not silently lost
    table, lineage, _ = generate_queries(cands, GenerationConfig(backend="offline-rules", styles="t2t,fused"), show_progress=False)
    store = LineageStore(tmp_path / "lineage.duckdb")
    counts = store.write_stage(STAGE, "000", "run-1", lineage)
    assert counts == {"n_records": 6, "n_kept": 4, "n_dropped": 2}
    assert store.drops(STAGE).to_dict("records") == [{"reason": "no_entity", "n": 2}]
    trace = store.trace(table.iloc[0]["id"])
    assert trace["parent_id"].tolist() == [table.iloc[0]["candidate_id"]]


def test_bad_candidates_raise_named_errors(tmp_path):
    from gme_data.errors import InvalidInputError

    cands = candidates_frame(tmp_path, n=2)
    with pytest.raises(InvalidInputError, match=r"lacks column\(s\) \['url'\]"):
        generate_queries(cands.drop(columns=["url"]), show_progress=False)
    dup = pd.concat([cands, cands.iloc[:1]], ignore_index=True)
    with pytest.raises(InvalidInputError, match="duplicate id 'cand-00'"):
        generate_queries(dup, show_progress=False)
    bad = cands.copy()
    bad["text"] = bad["text"].astype(object)
    bad.at[1, "text"] = 7
    with pytest.raises(InvalidInputError, match=r"row 'cand-01': column 'text' must be str"):
        generate_queries(bad, show_progress=False)
