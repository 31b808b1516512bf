"""Issue 16: a hard budget per run (dollars and tokens), reserved before each request.

All runs talk to the real loopback OpenAI-compatible server; the cache and the usage table are
real DuckDB files.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gme_data.errors import InvalidInputError
from gme_data.generation import BudgetExceeded, GenerationConfig, ResponseCache, generate_queries
from gme_data.generation.budget import Budget
from gme_data.generation.tokens import fallback_count
from gme_data.generation.usage import read_usage
from tests.generation.conftest import candidates_frame, paragraph_responder
from tests.support.openai_server import OpenAICompatServer, request_text

PRICES = {"price_prompt_per_1k": 1.0, "price_completion_per_1k": 2.0}
N = 15  # every paragraph of the fixture


def _config(server: OpenAICompatServer, tmp_path: Path, **overrides) -> GenerationConfig:
    values = dict(backend="openai", base_url=server.base_url, model="test-model", api_key="sk-test",
                  cache_path=str(tmp_path / "llm_cache.duckdb"), styles="t2t", concurrency=1, max_tokens=64,
                  max_invalid_retries=0, backoff_base_s=0.01, backoff_max_s=0.05, min_answer_support=0.0,
                  **PRICES)
    values.update(overrides)
    return GenerationConfig(**values)


def _server_cost(server: OpenAICompatServer) -> float:
    usage = server.usage_totals()
    return usage["prompt_tokens"] / 1000 * PRICES["price_prompt_per_1k"] \
        + usage["completion_tokens"] / 1000 * PRICES["price_completion_per_1k"]


def test_budget_stops_the_run_keeps_answers_and_continues_from_the_cache(server, tmp_path: Path) -> None:
    cands = candidates_frame(tmp_path, N)
    budget = 1.2  # room for a few of the 16 requests (each reserves its prompt estimate + 64 tokens)
    with pytest.raises(BudgetExceeded) as info:
        generate_queries(cands, _config(server, tmp_path, max_budget_usd=budget), show_progress=False,
                         run_id="run-1", partition="p0")
    first = server.request_count
    message = str(info.value)
    assert 0 < first < N
    assert "max_budget_usd=1.2 reached" in message and "Spent $" in message
    assert f"{first} of {N} candidates done, {N - first} remain" in message
    assert f"on {first} fresh requests" in message and "re-materialize" in message
    assert _server_cost(server) <= budget  # reservations are worst cases: no overshoot at all
    with ResponseCache(tmp_path / "llm_cache.duckdb") as cache:
        assert len(cache) == first  # every answer received is kept
        usage = read_usage(cache, "run-1")
    assert list(usage["status"]) == ["stopped_by_budget"] and int(usage["requests"].sum()) == first
    assert usage["cost_usd"].sum() == pytest.approx(_server_cost(server), abs=1e-6)

    result = generate_queries(cands, _config(server, tmp_path, max_budget_usd=10.0), show_progress=False,
                              run_id="run-2", partition="p0")
    texts = [request_text(r) for r in server.requests]
    assert server.request_count == N and len(set(texts)) == N  # no request was repeated
    assert result.report.cache_hits == first and result.report.requests == N - first
    assert result.report.kept == N
    with ResponseCache(tmp_path / "llm_cache.duckdb") as cache:
        usage = read_usage(cache, "run-2")
    assert list(usage["status"]) == ["ok"] and int(usage["cache_hits"].sum()) == first
    assert usage["budget_usd"].iloc[0] == 10.0 and usage["mode"].iloc[0] == "interactive"


def test_concurrent_requests_overshoot_by_at_most_one_reservation_per_slot(tmp_path: Path) -> None:
    concurrency, budget = 4, 2.0
    cands = candidates_frame(tmp_path, N)
    with OpenAICompatServer(responder=paragraph_responder, slow_seconds=0.3) as server:
        server.script(["slow"] * N)  # every answer takes 0.3 s, so 4 requests are in flight at once
        config = _config(server, tmp_path, max_budget_usd=budget, concurrency=concurrency)
        with pytest.raises(BudgetExceeded) as info:
            generate_queries(cands, config, show_progress=False, run_id="run-c")
        pricing = Budget(**{k.removesuffix("_per_1k") + "_per_1k": v for k, v in PRICES.items()})
        worst = max(pricing.price(fallback_count(r["messages"]), 64) for r in server.requests)
        assert 0 < server.request_count < N
        assert _server_cost(server) <= budget + concurrency * worst
        assert _server_cost(server) <= budget  # the reservations were upper bounds: no overshoot at all
    with ResponseCache(tmp_path / "llm_cache.duckdb") as cache:
        assert len(cache) == server.request_count  # the requests in flight finished and were cached
    done = re.search(r"; (\d+) of 15 candidates done", str(info.value))
    assert done is not None and int(done.group(1)) == server.request_count


def test_token_budget_stops_before_the_request_that_would_pass_it(server, tmp_path: Path) -> None:
    cands = candidates_frame(tmp_path, 6)
    with pytest.raises(BudgetExceeded, match="max_budget_tokens=1000 reached"):
        generate_queries(cands, _config(server, tmp_path, max_budget_tokens=1000, **{"price_prompt_per_1k": 0.0,
                                        "price_completion_per_1k": 0.0}), show_progress=False)
    usage = server.usage_totals()
    assert 0 < server.request_count < 6 and usage["prompt_tokens"] + usage["completion_tokens"] <= 1000


def test_budget_from_the_environment_and_bad_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GME_DATA_LLM_MAX_BUDGET_USD", "2.5")
    monkeypatch.setenv("GME_DATA_LLM_MAX_BUDGET_TOKENS", "1000")
    config = GenerationConfig.from_env(backend="openai")
    assert config.max_budget_usd == 2.5 and config.max_budget_tokens == 1000
    monkeypatch.setenv("GME_DATA_LLM_MAX_BUDGET_USD", "lots")
    with pytest.raises(InvalidInputError, match="GME_DATA_LLM_MAX_BUDGET_USD"):
        GenerationConfig.from_env(backend="openai")
    with pytest.raises(InvalidInputError, match="max_budget_usd"):
        GenerationConfig(backend="openai", max_budget_usd=-1.0)


def test_run_budget_spans_the_partitions_of_one_run(server, tmp_path: Path) -> None:
    cands = candidates_frame(tmp_path, N)
    config = _config(server, tmp_path, max_run_budget_usd=2.0)
    first = generate_queries(cands.iloc[:4], config, show_progress=False, run_id="run-x", partition="a")
    spent = first.report.cost_usd
    assert first.report.requests == 4 and 0 < spent < 2.0
    with pytest.raises(BudgetExceeded, match=r"max_run_budget_usd=2 \(\$[0-9.]+ spent by other partitions\)"):
        generate_queries(cands.iloc[4:], config, show_progress=False, run_id="run-x", partition="b")
    with ResponseCache(tmp_path / "llm_cache.duckdb") as cache:
        usage = read_usage(cache, "run-x")
    assert usage["cost_usd"].sum() <= 2.0 + 1e-9
    other_run = generate_queries(cands.iloc[12:15], config, show_progress=False, run_id="run-y", partition="b")
    assert other_run.report.requests == 3  # another run starts with the whole run budget
