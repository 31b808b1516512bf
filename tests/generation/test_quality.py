"""Quality gates: planted bad outputs are dropped with the right reason."""

from __future__ import annotations

import json

import pytest

from gme_data.generation import GenerationConfig, check_query, generate_queries, parse_json_answer
from gme_data.generation.prompts import SCHEMAS
from tests.generation.conftest import candidates_frame, paragraph_responder
from tests.support.openai_server import OpenAICompatServer, request_text

CONFIG = GenerationConfig()
GOOD = {"style": "fused", "query": "Who designed the Golden Gate Bridge?", "answer": "Joseph Strauss",
        "entity": "Golden Gate Bridge", "rewritten_query": "Who designed this bridge?"}


def test_a_good_row_passes():
    assert check_query(GOOD, CONFIG) == (None, "")


@pytest.mark.parametrize(("changes", "reason"), [
    ({"style": "x2y"}, "schema_mismatch"),
    ({"answer": 42}, "schema_mismatch"),
    ({"query": "   "}, "empty_query"),
    ({"rewritten_query": ""}, "empty_query"),
    ({"answer": "who designed the golden gate bridge"}, "query_equals_answer"),
    ({"rewritten_query": "Designer?"}, "too_short"),
    ({"query": "Who " + "really " * 45 + "designed it?"}, "too_long"),
    ({"rewritten_query": "Who designed this bridge " + "x" * 300 + "?"}, "too_long"),
    ({"entity": ""}, "empty_entity"),
    ({"rewritten_query": "Who designed this golden bridge?"}, "entity_leak"),
    ({"rewritten_query": "Who designed this bridge near the GATE?"}, "entity_leak"),
    ({"rewritten_query": "Wer hat diese Brücke entworfen?"}, "wrong_language"),
    ({"rewritten_query": "这座桥是谁设计的？"}, "wrong_language"),
])
def test_planted_bad_rows_get_the_right_reason(changes, reason):
    got, detail = check_query({**GOOD, **changes}, CONFIG)
    assert got == reason and detail


def test_leak_check_is_token_level_and_knows_generic_nouns():
    ant = {**GOOD, "entity": "Ant", "query": "What does the ant eat in winter?", "answer": "seeds"}
    assert check_query({**ant, "rewritten_query": "What does this insect want in winter?"}, CONFIG)[0] is None
    assert check_query({**ant, "rewritten_query": "What does this Ant eat in winter?"}, CONFIG)[0] == "entity_leak"
    umbrella = {**GOOD, "entity": "Umbrella", "query": "What is an umbrella?", "answer": "a canopy"}
    assert check_query({**umbrella, "rewritten_query": "What is this umbrella?"}, CONFIG)[0] == "entity_leak"


PASSAGE = ("The Golden Gate Bridge is a suspension bridge spanning the Golden Gate strait in San Francisco. "
           "It was designed by the engineer Joseph Strauss and opened in 1937.")


@pytest.mark.parametrize(("changes", "reason"), [
    ({"style": "t2t", "query": "Who designed the Golden Gate Bridge?"}, None),
    ({"style": "t2t", "query": "The Golden Gate Bridge is a suspension bridge spanning the Golden Gate strait?"},
     "copied_from_passage"),
    ({"query": "Who designed the Golden Gate Bridge?",
      "rewritten_query": "It was designed by the engineer Joseph Strauss and opened in 1937"}, "copied_from_passage"),
    ({"style": "t2t", "answer": "Gustave Eiffel in Paris"}, "answer_unsupported"),
    ({"style": "t2t", "answer": "the engineer Joseph Strauss"}, None),
    ({"entity": "engineer", "rewritten_query": "Who designed this bridge over the Golden strait?"}, "entity_leak"),
    ({"entity": "engineer", "rewritten_query": "Who designed this bridge in San Francisco?"}, None),
    # a caption query may describe the image in the paragraph's words: it retrieves the image
    ({"style": "t2i", "query": "The Golden Gate Bridge is a suspension bridge spanning the Golden Gate strait",
      "answer": None, "rewritten_query": None}, None),
])
def test_passage_gates_catch_copies_unsupported_answers_and_title_leaks(changes, reason):
    got, detail = check_query({**GOOD, **changes}, CONFIG, passage=PASSAGE, title="Golden Gate Bridge")
    assert got == reason and (detail if reason else detail == "")


def test_passage_gate_thresholds_are_configurable():
    copied = {**GOOD, "style": "t2t", "query": "It was designed by the engineer Joseph Strauss?"}
    assert check_query(copied, CONFIG, passage=PASSAGE)[0] == "copied_from_passage"
    lenient = GenerationConfig(max_copy_overlap=1.0)
    assert check_query(copied, lenient, passage=PASSAGE)[0] is None
    strict = GenerationConfig(max_copy_overlap=1.0, min_answer_support=0.9)
    assert check_query({**copied, "answer": "Strauss, Paris"}, strict, passage=PASSAGE)[0] == "answer_unsupported"


def test_a_query_repeating_a_few_shot_example_is_caught():
    from gme_data.generation import load_prompt
    from gme_data.generation.quality import prompt_copy

    prompt = load_prompt("caption_query_small").static_text
    reason, detail = prompt_copy("a red panda with reddish-brown fur resting on a tree branch", prompt, 0.75)
    assert reason == "copied_from_prompt_example" and "100%" in detail
    assert prompt_copy("the Eiffel Tower at night seen from the Seine", prompt, 0.75) == (None, "")


def test_language_gate_is_configurable():
    german = {"style": "t2t", "query": "Wer hat die Brücke entworfen?", "answer": "Joseph Strauss"}
    assert check_query(german, CONFIG)[0] == "wrong_language"
    assert check_query(german, GenerationConfig(expected_language="de"))[0] is None
    assert check_query(german, GenerationConfig(expected_language="any"))[0] is None


@pytest.mark.parametrize(("content", "refusal", "reason"), [
    ('{"query": "q?", "answer": "a"}', None, None),
    ('```json\n{"query": "q?", "answer": "a"}\n```', None, None),
    ('Sure! {"query": "q?", "answer": "a"}', None, None),
    ('{"query": "q?"', None, "invalid_json"),
    ('{"query": "q?", "answer": 3}', None, "schema_mismatch"),
    ('{"query": "q?", "answer": "a", "extra": 1}', None, "schema_mismatch"),
    ("I'm sorry, I can't help with that.", None, "refused"),
    (None, "I cannot assist with this.", "refused"),
])
def test_answer_parsing(content, refusal, reason):
    data, got, _ = parse_json_answer(content, refusal, SCHEMAS["doc2query"])
    assert got == reason
    assert (data == {"query": "q?", "answer": "a"}) if reason is None else data is None


def planted_responder(body):
    """Like paragraph_responder, but plants a leak (Koala) and a German question (Sushi)."""
    text = request_text(body)
    if "Title: Koala" in text and '"rewritten_query"' in text:
        return json.dumps({"entity": "Koala", "category": "animal", "rewritten_query": "How heavy is this koala?"})
    if "Title: Sushi" in text and '"rewritten_query"' not in text and "caption-style" not in text:
        return json.dumps({"query": "Woraus wird dieses Gericht gemacht?", "answer": "Reis"})
    return paragraph_responder(body)


def test_llm_outputs_that_fail_the_gates_are_dropped_with_reasons(tmp_path):
    cands = candidates_frame(tmp_path, n=4, with_images=False)  # Eiffel Tower, Koala, Monstera, Sushi
    with OpenAICompatServer(responder=planted_responder) as srv:
        config = GenerationConfig(backend="openai", base_url=srv.base_url, model="m", concurrency=2,
                                  cache_path=str(tmp_path / "c.duckdb"))
        table, lineage, report = generate_queries(cands, config, show_progress=False)
    assert report.drops_by_reason == {"wrong_language": 2, "entity_leak": 1}
    leak = next(r for r in lineage.records if r.reason == "entity_leak")
    assert leak.payload["rewritten_query"] == "How heavy is this koala?" and "koala" in leak.payload["detail"]
    assert sorted(table["candidate_id"]) == ["cand-00", "cand-00", "cand-01", "cand-02", "cand-02"]
