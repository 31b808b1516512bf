"""The run report of one ``generated_queries`` run: counts, drops, requests, tokens, cost."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class RunReport:
    """Accounting for one run; ``as_dict()`` is JSON-ready (Dagster metadata, logs)."""

    backend: str
    model: str
    prompt_versions: dict[str, str]
    generator: str = ""
    llm_server: dict[str, Any] = field(default_factory=dict)
    candidates: int = 0
    kept: int = 0
    dropped: int = 0
    kept_by_style: dict[str, int] = field(default_factory=dict)
    drops_by_reason: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    responses: int = 0
    cache_hits: int = 0
    http_retries: int = 0
    http_errors: dict[str, int] = field(default_factory=dict)
    invalid_responses: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0
    cached_completion_tokens: int = 0
    cost_usd: float = 0.0
    max_budget_usd: float = 0.0
    max_budget_tokens: int = 0
    #: Per prompt ``name@version``: fresh responses, cache hits and their tokens (the usage table's rows).
    usage_by_prompt: dict[str, dict[str, int]] = field(default_factory=dict)
    mode: str = "interactive"
    #: Batch mode: one entry per batch (id, status, lines, answered, failed, resumed).
    batches: list[dict[str, Any]] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["total_tokens"] = self.total_tokens
        return d

    def summary(self) -> str:
        """One line for logs."""
        drops = ", ".join(f"{k}={v}" for k, v in self.drops_by_reason.items()) or "none"
        return (f"generated_queries [{self.backend}:{self.model}] candidates={self.candidates} kept={self.kept} "
                f"dropped={self.dropped} ({drops}) requests={self.requests} cache_hits={self.cache_hits} "
                f"tokens={self.prompt_tokens}+{self.completion_tokens} cost=${self.cost_usd:.4f} "
                f"in {self.elapsed_s:.1f}s")
