"""Config validation, versioned prompt templates and the DuckDB response cache."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from gme_data.errors import InvalidInputError
from gme_data.generation import GenerationConfig, ResponseCache, load_prompt
from gme_data.generation.cache import CachedResponse
from gme_data.generation.prompts import parse_template


@pytest.mark.parametrize(("field", "value", "message"), [
    ("backend", "gpt", "backend='gpt'"),
    ("styles", "t2t,i2t", "styles='t2t,i2t'"),
    ("concurrency", 0, "concurrency=0 must be > 0"),
    ("price_prompt_per_1k", -1.0, "price_prompt_per_1k=-1.0 must be >= 0"),
    ("expected_language", "xx", "expected_language='xx'"),
    ("response_format", "yaml", "response_format='yaml'"),
])
def test_bad_config_values_are_named(field, value, message):
    with pytest.raises(InvalidInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        GenerationConfig(**{field: value})


def test_config_from_environment(monkeypatch):
    monkeypatch.setenv("GME_DATA_LLM_BASE_URL", "http://127.0.0.1:8000/v1")
    monkeypatch.setenv("GME_DATA_LLM_MODEL", "qwen2-vl-7b")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    monkeypatch.delenv("GME_DATA_LLM_BACKEND", raising=False)
    monkeypatch.delenv("GME_DATA_LLM_API_KEY", raising=False)
    config = GenerationConfig.from_env(temperature=0.0)
    assert (config.backend, config.base_url, config.model, config.temperature) == \
        ("openai", "http://127.0.0.1:8000/v1", "qwen2-vl-7b", 0.0)
    assert config.resolved_api_key() == "sk-env"
    assert config.public_dict()["api_key"] == ""
    assert GenerationConfig(api_key="secret").public_dict()["api_key"] == "***"


def test_local_backend_is_the_default_and_rules_are_explicit(monkeypatch):
    for var in ("GME_DATA_LLM_BACKEND", "GME_DATA_LLM_BASE_URL", "GME_DATA_LLM_GGUF"):
        monkeypatch.delenv(var, raising=False)
    config = GenerationConfig.from_env()
    assert (config.backend, config.generator, config.prompt_variant) == ("local", "llama.cpp-server", "small")
    assert config.model_name.startswith("local:")
    rules = GenerationConfig(backend="offline")  # the old name still works
    assert (rules.backend, rules.generator, rules.model_name) == ("offline-rules", "offline-rules",
                                                                   "offline-rules@v1")
    monkeypatch.setenv("GME_DATA_LLM_GGUF", "/models/qwen2.5-7b-instruct-q4_k_m.gguf")
    assert GenerationConfig.from_env().model_name == "local:qwen2.5-7b-instruct-q4_k_m.gguf"
    assert GenerationConfig(backend="openai", model="m").prompt_variant == "standard"
    with pytest.raises(InvalidInputError, match="prompt_set='tiny'"):
        GenerationConfig(prompt_set="tiny")
    with pytest.raises(InvalidInputError, match="llm_threads=-1 must be >= 0"):
        GenerationConfig(llm_threads=-1)
    assert GenerationConfig(llm_threads=3).server_threads == 3 and GenerationConfig().server_threads >= 1


def test_small_prompts_share_the_standard_schemas():
    for name in ("doc2query", "entity_rewrite", "caption_query"):
        small = load_prompt(f"{name}_small")
        assert small.schema == load_prompt(name).schema and small.version.startswith(f"{name}_small@v1+")
        assert '{"' in small.user  # few-shot answers in the prompt


def test_prompt_versions_track_file_content(tmp_path):
    d2q = load_prompt("doc2query")
    assert d2q.version.startswith("doc2query@v1+") and len(d2q.version) == len("doc2query@v1+") + 8
    text = (tmp_path / "doc2query_v2.txt")
    text.write_text("[system]\nBe brief.\n[user]\nParagraph: {{text}}\n")
    v2 = load_prompt("doc2query", prompt_dir=str(tmp_path))
    assert v2.number == 2 and v2.render(text="Koalas sleep a lot.") == ("Be brief.", "Paragraph: Koalas sleep a lot.")
    edited = parse_template("doc2query", 2, "[user]\nParagraph: {{text}}!\n")
    assert edited.version != v2.version
    with pytest.raises(InvalidInputError, match=r"missing value\(s\) for \['text'\]"):
        v2.render()
    with pytest.raises(InvalidInputError, match="version 7 not in"):
        load_prompt("doc2query", version=7)


def test_cache_round_trip_and_threads(tmp_path):
    cache = ResponseCache(tmp_path / "cache.duckdb")
    resp = CachedResponse('{"query": "q"}', None, 12, 3)

    def writer(i: int) -> None:
        cache.put(f"k{i}", "p", "m", {"seed": i}, resp)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(cache) == 8 and cache.get("k3") == resp and cache.get("nope") is None
    cache.close()


HOLDER = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


def test_cache_waits_for_another_process_holding_the_file(tmp_path):
    path = tmp_path / "shared.duckdb"
    ResponseCache(path).close()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), "1.0"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        start = time.monotonic()
        cache = ResponseCache(path, lock_timeout_s=30)
        cache.put("k", "p", "m", {}, CachedResponse("c", None, 1, 1))
        assert time.monotonic() - start > 0.3  # it had to wait for the other process
        assert cache.get("k") == CachedResponse("c", None, 1, 1)
        cache.close()
    finally:
        holder.wait(timeout=30)
