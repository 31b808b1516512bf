"""What a ``generated_queries`` run will ask and cost, computed before anything is sent.

:func:`estimate_generation` renders every first-attempt prompt of a run exactly as the run would
(same templates, values, images and cache keys), counts its tokens with the model's tokenizer (see
:mod:`gme_data.generation.tokens`) and looks each one up in the response cache. The entity rewrite
of a fused query needs the doc2query answer: when that answer is cached the rewrite prompt is
rendered exactly, otherwise it is estimated with the answer taking ``max_tokens`` tokens (worst case).
Completion tokens are priced at ``max_tokens`` per uncached prompt (the worst case, which is also
what the budget reserves); retries of invalid answers (up to ``max_invalid_retries`` each) are not
included. Nothing is sent to any endpoint and no server is started.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from gme_data.generation.cache import ResponseCache
from gme_data.generation.client import Ledger, build_messages, image_data_url, parse_json_answer
from gme_data.generation.config import GenerationConfig
from gme_data.generation.errors import GenerationError
from gme_data.generation.prompts import LANGUAGE_NAMES, PromptTemplate
from gme_data.generation.tokens import prompt_counter


@dataclass
class Estimate:
    """Prompts, tokens and worst-case cost of a run; ``cached_*`` is what the cache already answers."""

    model: str
    tokenizer: str
    candidates: int = 0
    candidates_by_style: dict[str, int] = field(default_factory=dict)
    prompts_by_template: dict[str, int] = field(default_factory=dict)
    prompts: int = 0
    cached_prompts: int = 0
    prompt_tokens: int = 0  # of the prompts still to send
    completion_tokens_max: int = 0
    cached_prompt_tokens: int = 0  # as the cache recorded them
    cached_completion_tokens: int = 0
    estimated_rewrites: int = 0  # rewrite prompts whose doc2query answer is not cached yet
    cost_usd_max: float = 0.0
    cached_cost_usd: float = 0.0  # what the cached answers cost when they were made
    #: Per prompt: (template, prompt tokens counted here) - used to check the tokenizer against a server.
    per_prompt: list[tuple[str, int]] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("per_prompt")
        return d

    def summary(self) -> str:
        return (f"estimate [{self.model}, tokenizer {self.tokenizer}]: {self.prompts} prompts for {self.candidates} "
                f"candidates ({self.cached_prompts} answered by the cache); to send: {self.prompt_tokens} prompt "
                f"tokens + at most {self.completion_tokens_max} completion tokens = at most ${self.cost_usd_max:.4f}")


def _resolved(config: GenerationConfig) -> tuple[GenerationConfig, str]:
    """The config with the model a run would record, and the GGUF path for the local backend."""
    if config.backend != "local":
        return config, ""
    from gme_data.generation.local_server import resolve_gguf

    gguf = resolve_gguf(config.gguf_path)
    return config.with_overrides(model=gguf.model_id), str(gguf.path)


def estimate_generation(candidates: pd.DataFrame, config: GenerationConfig,
                        cache_path: str | Path | None = None) -> Estimate:
    """The estimate of a run of ``config`` over ``candidates`` (see the module docstring)."""
    from gme_data.generation.stage import _IMAGE_HINT, LLMBackend, _styles_for, parse_candidates

    if config.backend == "offline-rules":
        raise GenerationError("estimate: backend 'offline-rules' sends no requests; nothing to estimate")
    config, gguf_path = _resolved(config)
    name, count = prompt_counter(config.backend, config.model, gguf_path)
    rows = parse_candidates(candidates)
    est = Estimate(model=config.model_name, tokenizer=name, candidates=len(rows))
    path = Path(cache_path or config.cache_path) if (cache_path or config.cache_path) else None
    cache = ResponseCache(path) if path is not None and path.exists() else None
    backend = LLMBackend(config, None, Ledger())
    client = backend.client
    by_style: Counter[str] = Counter()
    by_template: Counter[str] = Counter()
    skipped: Counter[str] = Counter()

    def ask(template: PromptTemplate, values: dict[str, Any], image_url: str | None = None,
            extra_tokens: int = 0) -> Any:
        messages = build_messages(*template.render(**values), image_url)
        tokens = count(messages) + extra_tokens
        by_template[template.name] += 1
        est.per_prompt.append((template.name, tokens))
        hit = cache.get(client.request_key(template, messages)) if cache is not None else None
        if hit is not None:
            est.cached_prompts += 1
            est.cached_prompt_tokens += hit.prompt_tokens
            est.cached_completion_tokens += hit.completion_tokens
        else:
            est.prompt_tokens += tokens
            est.completion_tokens_max += config.max_tokens
        return hit

    try:
        for c in rows:
            styles = _styles_for(c, config.style_list, skipped)
            by_style.update(styles)
            values = {"title": c.title or "", "domain": c.domain or "unknown", "text": c.text or "",
                      "language": LANGUAGE_NAMES[config.expected_language], "image_hint": ""}
            image_url, unreadable = None, False
            if c.image and config.send_images and config.backend != "local":
                try:
                    image_url = image_data_url(c.image, config.image_max_side)
                    values["image_hint"] = _IMAGE_HINT
                except (OSError, ValueError):
                    unreadable = True  # the run drops this candidate's t2i draft without asking
            if "t2t" in styles or "fused" in styles:
                hit = ask(backend.doc2query, values)
                if "fused" in styles:
                    data = parse_json_answer(hit.content, hit.refusal, backend.doc2query.schema)[0] if hit else None
                    if data is not None:
                        ask(backend.rewrite, {**values, **data}, image_url)
                    else:
                        est.estimated_rewrites += 1
                        ask(backend.rewrite, {**values, "query": "", "answer": ""}, image_url, config.max_tokens)
            if "t2i" in styles and not unreadable:
                ask(backend.caption, values, image_url)
    finally:
        if cache is not None:
            cache.close()
        client.close()
    est.candidates_by_style = dict(by_style)
    est.prompts_by_template = dict(by_template)
    est.prompts = sum(by_template.values())
    price_p, price_c = config.active_prices
    est.cost_usd_max = round(est.prompt_tokens / 1000 * price_p + est.completion_tokens_max / 1000 * price_c, 6)
    est.cached_cost_usd = round(est.cached_prompt_tokens / 1000 * price_p
                                + est.cached_completion_tokens / 1000 * price_c, 6)
    return est
