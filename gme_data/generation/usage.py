"""The usage table ``llm_usage``, kept in the response cache's DuckDB file.

One row per run, partition, model, prompt (``name@version``) and mode (``interactive``): fresh
requests, cache hits, tokens, cost and the budget in force, plus the run's status (``ok`` or
``stopped_by_budget``). Rows of a run that is materialized again are replaced, not added.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pandas as pd

from gme_data.generation.cache import ResponseCache

_SCHEMA = """
CREATE TABLE IF NOT EXISTS llm_usage (
    run_id VARCHAR, partition VARCHAR, model VARCHAR, prompt_version VARCHAR, mode VARCHAR,
    requests BIGINT, cache_hits BIGINT, prompt_tokens BIGINT, completion_tokens BIGINT, cost_usd DOUBLE,
    budget_usd DOUBLE, budget_tokens BIGINT, status VARCHAR, recorded_at TIMESTAMP
)
"""
COLUMNS = ("run_id", "partition", "model", "prompt_version", "mode", "requests", "cache_hits", "prompt_tokens",
           "completion_tokens", "cost_usd", "budget_usd", "budget_tokens", "status", "recorded_at")


def usage_rows(by_prompt: dict[str, dict[str, int]], *, run_id: str, partition: str, model: str, mode: str,
               price_prompt_per_1k: float, price_completion_per_1k: float, budget_usd: float,
               budget_tokens: int, status: str) -> list[dict[str, Any]]:
    """Rows for the ledger's per-prompt usage (cost priced from the fresh tokens)."""
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    rows = []
    for prompt, u in sorted(by_prompt.items()):
        cost = u["prompt_tokens"] / 1000 * price_prompt_per_1k + u["completion_tokens"] / 1000 * price_completion_per_1k
        rows.append({"run_id": run_id, "partition": partition, "model": model, "prompt_version": prompt,
                     "mode": mode, "requests": u["responses"], "cache_hits": u["cache_hits"],
                     "prompt_tokens": u["prompt_tokens"], "completion_tokens": u["completion_tokens"],
                     "cost_usd": round(cost, 6), "budget_usd": budget_usd, "budget_tokens": budget_tokens,
                     "status": status, "recorded_at": now})
    return rows


def record_usage(cache: ResponseCache, rows: list[dict[str, Any]]) -> None:
    """Write ``rows``, replacing earlier rows of the same run, partition and mode."""
    if not rows:
        return
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    with cache.connection() as con:
        con.execute(_SCHEMA)
        keys = {(r["run_id"], r["partition"], r["mode"]) for r in rows}
        for run_id, partition, mode in keys:
            con.execute("DELETE FROM llm_usage WHERE run_id = ? AND partition = ? AND mode = ?",
                        [run_id, partition, mode])
        con.register("_usage_rows", frame)
        con.execute(f"INSERT INTO llm_usage SELECT {', '.join(COLUMNS)} FROM _usage_rows")
        con.unregister("_usage_rows")


def read_usage(cache: ResponseCache, run_id: str | None = None) -> pd.DataFrame:
    """The usage table (one run's rows when ``run_id`` is given)."""
    with cache.connection() as con:
        con.execute(_SCHEMA)
        if run_id is None:
            return con.execute("SELECT * FROM llm_usage ORDER BY recorded_at").df()
        return con.execute("SELECT * FROM llm_usage WHERE run_id = ? ORDER BY prompt_version", [run_id]).df()


def usage_markdown(by_prompt: dict[str, dict[str, int]]) -> str:
    """The run's per-prompt usage as a Markdown table (asset metadata)."""
    if not by_prompt:
        return "_no LLM requests_"
    lines = ["| prompt | requests | cache hits | prompt tokens | completion tokens |", "|---|---|---|---|---|"]
    for prompt, u in sorted(by_prompt.items()):
        lines.append(f"| {prompt} | {u['responses']} | {u['cache_hits']} | {u['prompt_tokens']} | "
                     f"{u['completion_tokens']} |")
    return "\n".join(lines)


def run_spend(cache: ResponseCache, run_id: str, exclude_partition: str = "") -> float:
    """Dollars the usage table records for ``run_id`` (other than ``exclude_partition``)."""
    with cache.connection() as con:
        con.execute(_SCHEMA)
        row = con.execute("SELECT coalesce(sum(cost_usd), 0) FROM llm_usage WHERE run_id = ? AND partition <> ?",
                          [run_id, exclude_partition]).fetchone()
    return float(row[0])
