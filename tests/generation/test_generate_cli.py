"""Issue 16: ``gme-data generate --estimate`` and a budgeted ``gme-data generate`` against the loopback server."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from gme_data.cli import main
from tests.generation.conftest import candidates_frame
from tests.support.openai_server import OpenAICompatServer


def _args(server: OpenAICompatServer, tmp_path: Path, *extra: str) -> list[str]:
    cands = tmp_path / "candidates.parquet"
    if not cands.exists():
        candidates_frame(tmp_path, 5).to_parquet(cands)
    return ["generate", "--candidates", str(cands), "--cache", str(tmp_path / "llm.duckdb"), "--set",
            "backend=openai", f"base_url={server.base_url}", "model=test-model", "styles=t2t,fused",
            "max_tokens=64", "price_prompt_per_1k=1.0", "price_completion_per_1k=2.0", "max_invalid_retries=0",
            "min_answer_support=0", "send_images=false", *extra]


def test_estimate_then_budgeted_run_then_estimate_again(server: OpenAICompatServer, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*_args(server, tmp_path), "--estimate", "--json"]) == 0
    est = json.loads(capsys.readouterr().out)
    assert server.request_count == 0
    assert est["prompts_by_template"] == {"doc2query": 5, "entity_rewrite": 5} and est["cached_prompts"] == 0
    assert est["completion_tokens_max"] == 10 * 64 and est["cost_usd_max"] > 0

    out = tmp_path / "queries.parquet"
    assert main([*_args(server, tmp_path, "max_budget_usd=1.0"), "--out", str(out)]) == 2  # stopped by budget
    err = capsys.readouterr().err
    assert "stopped by its budget" in err and "of 5 candidates done" in err and not out.exists()
    first = server.request_count

    assert main([*_args(server, tmp_path), "--estimate", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cached_prompts"] == first

    assert main([*_args(server, tmp_path, "max_budget_usd=100"), "--out", str(out)]) == 0
    assert server.request_count == 10 and len(pd.read_parquet(out)) == 10


def test_bad_arguments_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "--candidates", str(tmp_path / "missing.parquet"), "--estimate"]) == 2
    assert "missing.parquet: no such file" in capsys.readouterr().err
    candidates_frame(tmp_path, 1).to_parquet(tmp_path / "c.parquet")
    assert main(["generate", "--candidates", str(tmp_path / "c.parquet"), "--estimate",
                 "--set", "max_budget_usd=lots"]) == 2
    assert "--set max_budget_usd='lots': not a float" in capsys.readouterr().err
    assert main(["generate", "--candidates", str(tmp_path / "c.parquet"), "--estimate", "--set", "nope=1"]) == 2
    assert "generation config field" in capsys.readouterr().err
