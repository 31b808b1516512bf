"""Issue 16: batch mode against a loopback server with the Files and Batches endpoints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from gme_data.generation import GenerationConfig, ResponseCache, generate_queries
from gme_data.generation.batch import read_batches
from gme_data.generation.usage import read_usage
from tests.generation.conftest import candidates_frame, paragraph_responder
from tests.support.batch_server import BatchServer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def bserver():
    with BatchServer(responder=paragraph_responder) as srv:
        yield srv


def _config(server: BatchServer, cache: Path, **overrides) -> GenerationConfig:
    values = dict(backend="openai", base_url=server.base_url, model="test-model", api_key="sk-test",
                  cache_path=str(cache), max_tokens=64, max_invalid_retries=0, min_answer_support=0.0,
                  price_prompt_per_1k=1.0, price_completion_per_1k=2.0, mode="batch", batch_poll_s=0.01,
                  batch_max_wait_s=30.0, concurrency=2)
    values.update(overrides)
    return GenerationConfig(**values)


def _rows(table: pd.DataFrame) -> list[dict]:
    return table.sort_values("id").to_dict("records")


def test_batch_run_gives_the_same_rows_as_an_interactive_run(bserver: BatchServer, tmp_path: Path) -> None:
    cands = candidates_frame(tmp_path, 6)  # three with images: t2t, fused and t2i styles
    interactive = generate_queries(cands, _config(bserver, tmp_path / "i.duckdb", mode="interactive"),
                                   show_progress=False)
    sent_interactive = bserver.request_count
    batch = generate_queries(cands, _config(bserver, tmp_path / "b.duckdb"), show_progress=False, run_id="r-b")
    assert _rows(batch.table) == _rows(interactive.table) and len(batch.table) == 15
    assert bserver.request_count - sent_interactive == sent_interactive  # the same requests, once each
    assert [b["status"] for b in batch.report.batches] == ["completed", "completed"]  # doc2query+caption, rewrites
    assert [b["lines"] for b in batch.report.batches] == [9, 6]
    # batch prices are half the interactive ones; the same tokens were counted
    assert batch.report.cost_usd == pytest.approx(interactive.report.cost_usd / 2, abs=1e-6)
    with ResponseCache(tmp_path / "b.duckdb") as cache:
        usage = read_usage(cache, "r-b")
        stored = read_batches(cache)
    assert set(usage["mode"]) == {"batch"} and int(usage["requests"].sum()) == 15
    assert int(usage["cache_hits"].sum()) == 0
    assert [(b["status"], b["collected"], b["n_lines"]) for b in stored] == [("completed", True, 9),
                                                                             ("completed", True, 6)]


def test_failed_lines_failed_and_expired_batches_resend_only_what_is_missing(bserver: BatchServer,
                                                                             tmp_path: Path) -> None:
    cands = candidates_frame(tmp_path, 6, with_images=False)
    bserver.fail_lines("Title: Sushi", times=1)  # one line lands in the error file, once
    bserver.outcomes(["expired", "completed", "failed", "completed"])
    config = _config(bserver, tmp_path / "b.duckdb", styles="t2t", concurrency=1)  # lines in candidate order
    result = generate_queries(cands, config, show_progress=False)
    statuses = [(b["status"], b["lines"], b["answered"]) for b in result.report.batches]
    # expired: the first half answered; then the other 3, Sushi's line fails; a failed batch; then Sushi alone
    assert statuses == [("expired", 6, 3), ("completed", 3, 2), ("failed", 1, 0), ("completed", 1, 1)]
    assert len(result.table) == 6 and result.report.kept == 6
    texts = [json.dumps(r["messages"]) for r in bserver.requests]
    assert len(texts) == 6 == len(set(texts))  # every prompt answered exactly once: only missing lines re-sent
    assert result.report.http_errors == {"batch_expired": 3, "batch_line_failed": 1, "batch_failed": 1}
    assert result.report.requests == 6 + 3 + 1 + 1  # lines submitted


def test_lines_unanswered_after_the_last_batch_are_dropped(bserver: BatchServer, tmp_path: Path) -> None:
    cands = candidates_frame(tmp_path, 2, with_images=False)
    bserver.outcomes(["failed", "failed"])
    result = generate_queries(cands, _config(bserver, tmp_path / "b.duckdb", styles="t2t", batch_max_rounds=2),
                              show_progress=False)
    assert len(result.table) == 0 and result.report.drops_by_reason == {"retry_budget_exhausted": 2}


_CHILD = """
import sys
import pandas as pd
from gme_data.generation import GenerationConfig, generate_queries
cfg = GenerationConfig(backend="openai", base_url=sys.argv[1], model="test-model", api_key="sk-test",
                       cache_path=sys.argv[2], max_tokens=64, max_invalid_retries=0, min_answer_support=0.0,
                       styles="t2t", mode="batch", batch_poll_s=0.05, batch_max_wait_s=60.0)
generate_queries(pd.read_parquet(sys.argv[3]), cfg, show_progress=False)
"""


def test_a_restarted_process_resumes_the_open_batch(bserver: BatchServer, tmp_path: Path) -> None:
    cands = candidates_frame(tmp_path, 4, with_images=False)
    cands.to_parquet(tmp_path / "c.parquet")
    cache = tmp_path / "b.duckdb"
    bserver.hold()  # the batch stays in_progress
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", _CHILD, bserver.base_url, str(cache),
                              str(tmp_path / "c.parquet")], env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while "in_progress" not in bserver.batch_statuses() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert bserver.batch_statuses() == ["in_progress"]
        time.sleep(0.3)  # the child polls
    finally:
        child.kill()
        child.wait(timeout=10)
    assert child.returncode != 0 and bserver.request_count == 0
    bserver.release()
    result = generate_queries(cands, _config(bserver, cache, styles="t2t"), show_progress=False)
    assert bserver.batch_creates == 1  # resumed, not submitted again
    assert result.report.batches[0]["resumed"] is True and len(result.table) == 4
    assert bserver.request_count == 4


def test_budget_in_batch_mode_submits_what_fits_and_continues(bserver: BatchServer, tmp_path: Path) -> None:
    from gme_data.generation import BudgetExceeded

    cands = candidates_frame(tmp_path, 6, with_images=False)
    config = _config(bserver, tmp_path / "b.duckdb", styles="t2t", concurrency=1, max_budget_usd=0.6)
    with pytest.raises(BudgetExceeded, match="max_budget_usd=0.6 reached") as info:
        generate_queries(cands, config, show_progress=False)
    first = bserver.request_count
    assert 0 < first < 6 and bserver.batch_creates == 1 and "of 6 candidates done" in str(info.value)
    usage = bserver.usage_totals()  # priced at the batch prices, half of 1.0 / 2.0 per 1k
    assert usage["prompt_tokens"] / 1000 * 0.5 + usage["completion_tokens"] / 1000 * 1.0 <= 0.6
    result = generate_queries(cands, config.with_overrides(max_budget_usd=0.0), show_progress=False)
    assert len(result.table) == 6 and bserver.request_count == 6 and result.report.cache_hits == first
