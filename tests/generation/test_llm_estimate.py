"""Issue 16: the estimate before launch, checked against the tokens real servers count."""

from __future__ import annotations

from pathlib import Path

import pytest

from gme_data.generation import GenerationConfig, GenerationError, generate_queries
from gme_data.generation.estimate import estimate_generation
from tests.generation.conftest import candidates_frame
from tests.support.openai_server import OpenAICompatServer


def test_estimate_matches_the_tokens_the_llama_cpp_server_counts(tmp_path: Path) -> None:
    cands = candidates_frame(tmp_path, 4, with_images=False)
    config = GenerationConfig(backend="local", styles="t2t", cache_path=str(tmp_path / "llm.duckdb"),
                              max_tokens=48, max_invalid_retries=0, llm_threads=1, concurrency=1)
    before = estimate_generation(cands, config)
    assert before.tokenizer == "gguf-vocab" and before.prompts == 4 and before.cached_prompts == 0
    assert before.completion_tokens_max == 4 * 48
    result = generate_queries(cands, config, show_progress=False)
    counted = result.report.prompt_tokens  # what llama.cpp's server reported in `usage`
    assert result.report.responses == 4  # (plus one json_schema probe the server rejected)
    print(f"estimated {before.prompt_tokens} prompt tokens, server counted {counted}")
    assert abs(before.prompt_tokens - counted) <= 0.10 * counted, (before.prompt_tokens, counted)

    after = estimate_generation(cands, config)  # the cache now answers every prompt
    assert after.cached_prompts == 4 and after.prompt_tokens == 0 and after.completion_tokens_max == 0
    assert after.cached_prompt_tokens == counted


def test_estimate_counts_prompts_per_style_prices_them_and_sees_the_cache(server: OpenAICompatServer,
                                                                          tmp_path: Path) -> None:
    cands = candidates_frame(tmp_path, 6)  # three with images
    config = GenerationConfig(backend="openai", base_url=server.base_url, model="test-model", api_key="sk-test",
                              cache_path=str(tmp_path / "llm.duckdb"), max_tokens=64, max_invalid_retries=0,
                              price_prompt_per_1k=0.5, price_completion_per_1k=1.0, min_answer_support=0.0)
    est = estimate_generation(cands, config)
    assert server.request_count == 0  # nothing sent
    assert est.tokenizer.startswith("fallback:") and est.candidates_by_style == {"t2t": 6, "fused": 6, "t2i": 3}
    assert est.prompts_by_template == {"doc2query": 6, "entity_rewrite": 6, "caption_query": 3}
    assert est.estimated_rewrites == 6
    assert est.cost_usd_max == pytest.approx(est.prompt_tokens / 1000 * 0.5 + 15 * 64 / 1000 * 1.0, abs=1e-6)

    generate_queries(cands, config, show_progress=False)
    sent = server.request_count
    again = estimate_generation(cands, config)
    assert again.cached_prompts == again.prompts == sent == 15 and again.estimated_rewrites == 0
    assert again.prompt_tokens == 0 and again.cost_usd_max == 0.0
    assert again.cached_prompt_tokens == server.usage_totals()["prompt_tokens"]


def test_estimate_refuses_the_rules_backend() -> None:
    with pytest.raises(GenerationError, match="offline-rules"):
        estimate_generation(candidates_frame(Path("/nonexistent"), 0), GenerationConfig(backend="offline-rules"))
