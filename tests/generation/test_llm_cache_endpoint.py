"""Issue 14, finding 9 (first half): the LLM response cache key includes the endpoint."""

from __future__ import annotations

import json

import duckdb

from gme_data.generation import GenerationConfig, ResponseCache, generate_queries
from gme_data.generation.cache import CachedResponse, cache_key
from gme_data.generation.config import OFFLINE_ENDPOINT, endpoint_identity
from tests.generation.conftest import candidates_frame
from tests.support.openai_server import OpenAICompatServer


def _answer_from(server_name: str):
    def responder(body):
        return json.dumps({"query": f"What does server {server_name} know about this topic?",
                           "answer": f"answer from {server_name}"})
    return responder


def test_same_model_on_another_endpoint_is_not_served_from_the_cache(tmp_path):
    cands = candidates_frame(tmp_path, n=2, with_images=False)
    cache_path = str(tmp_path / "shared_cache.duckdb")
    with OpenAICompatServer(responder=_answer_from("A")) as a, OpenAICompatServer(responder=_answer_from("B")) as b:
        # the answers name the server, not the paragraph: the answer-support gate is off for this test
        common = dict(backend="openai", model="same-model", api_key="k", cache_path=cache_path, styles="t2t",
                      concurrency=1, min_answer_support=0.0)
        first = generate_queries(cands, GenerationConfig(base_url=a.base_url, **common), show_progress=False)
        second = generate_queries(cands, GenerationConfig(base_url=b.base_url, **common), show_progress=False)
        assert a.request_count == 2 and b.request_count == 2  # B was asked, not A's answers reused
        assert set(first.table["answer"]) == {"answer from A"}
        assert set(second.table["answer"]) == {"answer from B"}
        # the same endpoint spelled differently (credentials, trailing slash) still hits the cache
        spelled = a.base_url.replace("http://", "http://user:pw@") + "/"
        third = generate_queries(cands, GenerationConfig(base_url=spelled, **common), show_progress=False)
        assert a.request_count == 2 and third.report.cache_hits == 2
        urls = {a.base_url, b.base_url}
    with duckdb.connect(cache_path, read_only=True) as con:
        endpoints = {r[0] for r in con.execute("SELECT endpoint FROM llm_responses").fetchall()}
    assert endpoints == urls  # normalised, no credentials


def test_endpoint_identity_normalises_and_drops_credentials():
    assert endpoint_identity("HTTP://u:p@LocalHost:80/v1/") == "http://localhost/v1"
    assert endpoint_identity("https://api.example.com:443/v1?x=1#f") == "https://api.example.com/v1"
    assert endpoint_identity("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000/v1"
    assert endpoint_identity("") == "https://api.openai.com/v1"  # the openai package's default
    assert GenerationConfig(backend="offline-rules").endpoint_identity() == OFFLINE_ENDPOINT == "offline:rules"
    # the local llama.cpp server gets a new port every run: it is identified by the GGUF it serves
    local = GenerationConfig(backend="local", model="m.gguf@sha256:0123456789ab")
    assert local.endpoint_identity() == "llama.cpp:m.gguf@sha256:0123456789ab"
    assert local.with_overrides(base_url="http://127.0.0.1:1234/v1").endpoint_identity() == local.endpoint_identity()
    assert GenerationConfig(backend="local", model="other.gguf@sha256:ba9876543210").endpoint_identity() != \
        local.endpoint_identity()
    assert GenerationConfig(backend="openai", base_url="http://h:1/v1").endpoint_identity() == "http://h:1/v1"
    params = {"temperature": 0.2}
    assert cache_key("p", "m", params, endpoint="http://a/v1") != cache_key("p", "m", params, endpoint="http://b/v1")


def test_cache_file_from_before_the_endpoint_column_still_opens(tmp_path):
    path = tmp_path / "old.duckdb"
    with duckdb.connect(str(path)) as con:  # the schema as it was before this change, with one entry
        con.execute("CREATE TABLE llm_responses (key VARCHAR PRIMARY KEY, prompt_hash VARCHAR, model VARCHAR, "
                    "params JSON, content VARCHAR, refusal VARCHAR, prompt_tokens INTEGER, "
                    "completion_tokens INTEGER, created_at TIMESTAMP)")
        con.execute("INSERT INTO llm_responses VALUES ('old-key', 'p', 'm', '{}', '{\"q\": 1}', NULL, 3, 4, "
                    "now()::TIMESTAMP)")
    with ResponseCache(path) as cache:
        assert cache.get("old-key") == CachedResponse('{"q": 1}', None, 3, 4)  # old rows stay readable
        key = cache_key("p", "m", {}, endpoint="http://127.0.0.1:1/v1")
        assert key != "old-key" and cache.get(key) is None  # but no new request maps onto them
        cache.put(key, "p", "m", {}, CachedResponse("{}", None, 1, 1), endpoint="http://127.0.0.1:1/v1")
        assert len(cache) == 2 and cache.get(key) == CachedResponse("{}", None, 1, 1)
