"""The openai backend against a real OpenAI-compatible server on loopback."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from PIL import Image

from gme_data.generation import GenerationConfig, GenerationError, generate_queries, load_prompt
from gme_data.generation.client import ChatClient, Ledger
from gme_data.generation.stage import OUTPUT_COLUMNS, STAGE
from tests.generation.conftest import candidates_frame
from tests.support.openai_server import OpenAICompatServer, image_urls, request_text


def llm_config(server: OpenAICompatServer, tmp_path: Path, **overrides) -> GenerationConfig:
    values = dict(backend="openai", base_url=server.base_url, model="test-model", api_key="sk-test",
                  cache_path=str(tmp_path / "llm_cache.duckdb"), concurrency=1, backoff_base_s=0.01,
                  backoff_max_s=0.05, timeout_s=5.0, max_invalid_retries=2, price_prompt_per_1k=0.5,
                  price_completion_per_1k=1.5)
    values.update(overrides)
    return GenerationConfig(**values)


def test_happy_path_produces_every_style_with_lineage(server, tmp_path):
    cands = candidates_frame(tmp_path, n=4)
    table, lineage, report = generate_queries(cands, llm_config(server, tmp_path, concurrency=3),
                                              show_progress=False)
    assert list(table.columns) == list(OUTPUT_COLUMNS)
    # 4 t2t + 4 fused + 2 t2i (two candidates have images)
    assert sorted(table["style"].value_counts().items()) == [("fused", 4), ("t2i", 2), ("t2t", 4)]
    fused = table[table["style"] == "fused"].iloc[0]
    assert fused["rewritten_query"] == "What does the encyclopedia say about this subject here?"
    assert fused["entity"] == "Eiffel Tower"
    assert fused["query_modality"] == "fused" and fused["candidate_modality"] == "fused"
    t2i = table[table["style"] == "t2i"].iloc[0]
    assert (t2i["query_modality"], t2i["candidate_modality"]) == ("text", "image")
    d2q, rw = load_prompt("doc2query").version, load_prompt("entity_rewrite").version
    assert fused["prompt_version"] == f"{d2q};{rw}"
    assert set(table.loc[table["style"] == "t2t", "prompt_version"]) == {d2q}
    # requests: 4 doc2query + 4 rewrites + 2 captions
    assert server.request_count == 10 == report.requests
    assert {e.parent_id for e in lineage.edges} == set(cands["id"])
    assert {e.stage for e in lineage.edges} == {STAGE}
    assert len(lineage.records) == len(table) and report.dropped == 0
    assert all(r.payload["response_keys"] for r in lineage.records)
    assert table["id"].is_unique


def test_malformed_json_is_retried_then_rejected_with_reason(server, tmp_path):
    cands = candidates_frame(tmp_path, n=2, with_images=False)
    server.when("Title: Koala", ["malformed"] * 3)  # budget: 1 try + 2 retries, all malformed
    table, lineage, report = generate_queries(cands, llm_config(server, tmp_path), show_progress=False)
    koala_bodies = [b for b in server.requests if "Title: Koala" in request_text(b)]
    assert len(koala_bodies) == 3
    assert [b["seed"] for b in koala_bodies] == [0, 1, 2]  # each retry re-samples
    assert set(table["candidate_id"]) == {"cand-00"}
    assert report.drops_by_reason == {"invalid_json": 2}  # the koala's t2t and fused rows
    dropped = [r for r in lineage.records if r.status == "dropped"]
    assert {r.payload["style"] for r in dropped} == {"t2t", "fused"}
    assert all("doc2query" in r.payload["detail"] for r in dropped)
    assert report.invalid_responses == 3


def test_malformed_then_valid_answer_is_kept(server, tmp_path):
    cands = candidates_frame(tmp_path, n=1, with_images=False)
    server.script(["malformed", "refuse"])
    table, _, report = generate_queries(cands, llm_config(server, tmp_path), show_progress=False)
    assert len(table) == 2 and report.dropped == 0
    assert report.invalid_responses == 2 and report.requests == 4  # 3 doc2query tries + 1 rewrite


def test_refusals_are_recorded_as_refused(server, tmp_path):
    cands = candidates_frame(tmp_path, n=1, with_images=False)
    server.script(["refuse"] * 3)
    table, lineage, report = generate_queries(cands, llm_config(server, tmp_path), show_progress=False)
    assert table.empty
    assert report.drops_by_reason == {"refused": 2}
    assert {r.reason for r in lineage.records} == {"refused"}


def test_rate_limited_request_is_retried_then_succeeds(server, tmp_path):
    cands = candidates_frame(tmp_path, n=1, with_images=False)
    server.script(["429", "429"])
    table, _, report = generate_queries(cands, llm_config(server, tmp_path), show_progress=False)
    assert len(table) == 2
    assert [r.status for r in server.log][:3] == [429, 429, 200]
    assert report.http_errors == {"429": 2} and report.http_retries == 2
    assert report.requests == 4 and report.responses == 2


def test_timeouts_back_off_exponentially_then_succeed(server, tmp_path):
    config = llm_config(server, tmp_path, timeout_s=1.0, backoff_base_s=0.05, backoff_max_s=1.0)
    sleeps: list[float] = []
    client = ChatClient(config, ledger=Ledger(), sleep=lambda s: sleeps.append(s))
    server.script(["slow", "slow", "500"])
    template = load_prompt("caption_query")
    result = client.structured(template, {"title": "Koala", "domain": "animals", "text": "The koala is a marsupial.",
                                          "language": "English", "image_hint": ""})
    assert result.data == {"query": "A photograph showing Koala in its typical setting"}
    assert client.ledger.errors == {"timeout": 2, "500": 1}
    assert len(sleeps) == 3
    for retry, delay in enumerate(sleeps):  # jittered in [0.5, 1] x base * 2**retry
        assert 0.05 * 2**retry * 0.5 <= delay <= 0.05 * 2**retry


def test_retry_budget_exhausted_is_a_drop_reason(server, tmp_path):
    cands = candidates_frame(tmp_path, n=1, with_images=False)
    server.script(["500"] * 3)
    table, lineage, report = generate_queries(cands, llm_config(server, tmp_path, max_http_retries=2),
                                              show_progress=False)
    assert table.empty and server.request_count == 3
    assert report.drops_by_reason == {"retry_budget_exhausted": 2}
    assert report.http_retries == 2 and report.http_errors == {"500": 3}


def test_rerun_is_served_from_the_cache(server, tmp_path):
    cands = candidates_frame(tmp_path, n=3)
    config = llm_config(server, tmp_path, concurrency=2)
    server.when("Title: Koala", ["malformed"])  # cached too: the rerun replays the same attempts
    first = generate_queries(cands, config, show_progress=False)
    n_requests = server.request_count
    assert n_requests == first.report.requests > 0
    second = generate_queries(cands, config, show_progress=False)
    assert server.request_count == n_requests  # zero new requests
    assert second.report.requests == 0 and second.report.cache_hits == n_requests
    assert second.report.prompt_tokens == 0 and second.report.cost_usd == 0
    assert second.report.cached_prompt_tokens == first.report.prompt_tokens
    assert second.table.equals(first.table)
    # a different sampling parameter is a different cache key
    generate_queries(cands, config.with_overrides(temperature=0.9), show_progress=False)
    assert server.request_count > n_requests


def test_token_accounting_matches_server_usage(server, tmp_path):
    cands = candidates_frame(tmp_path, n=5)
    server.script(["429", "malformed"])
    _, _, report = generate_queries(cands, llm_config(server, tmp_path, concurrency=3), show_progress=False)
    usage = server.usage_totals()
    assert usage["prompt_tokens"] > 0
    assert report.prompt_tokens == usage["prompt_tokens"]
    assert report.completion_tokens == usage["completion_tokens"]
    assert report.responses == usage["responses"]
    expected = usage["prompt_tokens"] / 1000 * 0.5 + usage["completion_tokens"] / 1000 * 1.5
    assert report.cost_usd == pytest.approx(expected, abs=1e-6)
    assert report.as_dict()["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_image_items_are_sent_as_data_urls(server, tmp_path):
    cands = candidates_frame(tmp_path, n=2)  # cand-00 has an image, cand-01 has none
    generate_queries(cands, llm_config(server, tmp_path, image_max_side=64), show_progress=False)
    with_image = [b for b in server.requests if image_urls(b)]
    assert {("caption-style" in request_text(b)) or ('"rewritten_query"' in request_text(b))
            for b in with_image} == {True}
    assert all("Title: Eiffel Tower" in request_text(b) for b in with_image)
    url = image_urls(with_image[0])[0]
    assert url.startswith("data:image/jpeg;base64,")
    img = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert max(img.size) == 64
    user = with_image[0]["messages"][-1]["content"]
    assert [part["type"] for part in user] == ["text", "image_url"]
    assert with_image[0]["response_format"]["type"] == "json_schema"


def test_unreadable_image_drops_only_the_caption_query(server, tmp_path):
    cands = candidates_frame(tmp_path, n=1)
    Path(cands.loc[0, "image"]).write_bytes(b"not a png")
    table, lineage, report = generate_queries(cands, llm_config(server, tmp_path), show_progress=False)
    assert sorted(table["style"]) == ["fused", "t2t"]
    assert report.drops_by_reason == {"unreadable_image": 1}
    assert all(not image_urls(b) for b in server.requests)


def test_bad_api_key_raises_a_named_error(tmp_path):
    with OpenAICompatServer(api_key="right-key") as srv:
        config = llm_config(srv, tmp_path, api_key="wrong-key")
        with pytest.raises(GenerationError, match=r"127\.0\.0\.1.*test-model.*401"):
            generate_queries(candidates_frame(tmp_path, n=1, with_images=False), config, show_progress=False)


def test_rate_limit_spaces_requests(server, tmp_path):
    cands = candidates_frame(tmp_path, n=2, with_images=False)
    import time

    start = time.monotonic()
    generate_queries(cands, llm_config(server, tmp_path, requests_per_minute=600, concurrency=2),
                     show_progress=False)
    # 4 requests at most one per 0.1 s: at least 0.3 s
    assert server.request_count == 4 and time.monotonic() - start >= 0.3


def test_models_endpoint_lists_the_model(server):
    import openai

    client = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
    assert [m.id for m in client.models.list()] == ["test-model"]
