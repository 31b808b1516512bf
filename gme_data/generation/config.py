"""Configuration of the ``generated_queries`` stage: one plain dataclass of simple values.

The Dagster resource wraps these fields one to one. :meth:`GenerationConfig.from_env` fills the
endpoint from the environment (``GME_DATA_LLM_BASE_URL``, ``GME_DATA_LLM_MODEL``,
``OPENAI_API_KEY`` / ``GME_DATA_LLM_API_KEY``, ``GME_DATA_LLM_BACKEND``).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from gme_data.errors import InvalidInputError

BACKENDS = ("offline", "openai")
OFFLINE_MODEL = "offline-rules@v1"
#: Query styles: plain text query for the paragraph, caption-style query for its image, and the
#: fused (GME) query whose entity is rewritten generically so it needs the entity's image.
STYLES = ("t2t", "t2i", "fused")
RESPONSE_FORMATS = ("json_schema", "json_object", "none")
SUPPORTED_LANGUAGES = ("en", "de", "fr", "es", "any")

_ENV = {
    "backend": "GME_DATA_LLM_BACKEND",
    "base_url": "GME_DATA_LLM_BASE_URL",
    "model": "GME_DATA_LLM_MODEL",
}


@dataclass(frozen=True)
class GenerationConfig:
    """Everything the query generator needs; all fields are str / int / float / bool."""

    backend: str = "offline"
    styles: str = "t2t,t2i,fused"
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
    timeout_s: float = 60.0
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
    # --- quality gates ---
    min_query_words: int = 3
    max_query_words: int = 40
    max_query_chars: int = 300
    expected_language: str = "en"

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`InvalidInputError` naming the first bad field."""
        if self.backend not in BACKENDS:
            raise InvalidInputError(f"generation config: backend={self.backend!r}; choose one of {BACKENDS}")
        unknown = [s for s in self.style_list if s not in STYLES]
        if unknown or not self.style_list:
            raise InvalidInputError(f"generation config: styles={self.styles!r}; use a comma list of {STYLES}")
        if self.response_format not in RESPONSE_FORMATS:
            raise InvalidInputError(
                f"generation config: response_format={self.response_format!r}; choose one of {RESPONSE_FORMATS}")
        if self.expected_language not in SUPPORTED_LANGUAGES:
            raise InvalidInputError(f"generation config: expected_language={self.expected_language!r}; "
                                    f"supported: {SUPPORTED_LANGUAGES}")
        positive = {"max_tokens": self.max_tokens, "concurrency": self.concurrency, "timeout_s": self.timeout_s,
                    "image_max_side": self.image_max_side, "max_query_words": self.max_query_words,
                    "max_query_chars": self.max_query_chars}
        for name, value in positive.items():
            if value <= 0:
                raise InvalidInputError(f"generation config: {name}={value!r} must be > 0")
        non_negative = {"requests_per_minute": self.requests_per_minute, "max_http_retries": self.max_http_retries,
                        "max_invalid_retries": self.max_invalid_retries, "backoff_base_s": self.backoff_base_s,
                        "backoff_max_s": self.backoff_max_s, "price_prompt_per_1k": self.price_prompt_per_1k,
                        "price_completion_per_1k": self.price_completion_per_1k,
                        "min_query_words": self.min_query_words, "temperature": self.temperature}
        for name, value in non_negative.items():
            if value < 0:
                raise InvalidInputError(f"generation config: {name}={value!r} must be >= 0")
        if self.min_query_words > self.max_query_words:
            raise InvalidInputError(f"generation config: min_query_words={self.min_query_words} exceeds "
                                    f"max_query_words={self.max_query_words}")
        if self.backend == "openai" and not self.model:
            raise InvalidInputError("generation config: backend='openai' needs a model name")

    @property
    def style_list(self) -> tuple[str, ...]:
        return tuple(s.strip() for s in self.styles.split(",") if s.strip())

    @property
    def model_name(self) -> str:
        """The model recorded in output rows ("offline-rules@v1" for the offline backend)."""
        return self.model if self.backend == "openai" else OFFLINE_MODEL

    def resolved_api_key(self) -> str:
        """The API key: the field, else ``GME_DATA_LLM_API_KEY``, else ``OPENAI_API_KEY``.

        Local servers (vLLM, Ollama, LM Studio) accept any key, so a placeholder is used when none is set.
        """
        return (self.api_key or os.environ.get("GME_DATA_LLM_API_KEY") or os.environ.get("OPENAI_API_KEY")
                or "not-needed")

    def public_dict(self) -> dict[str, Any]:
        """The config without secrets (for run metadata and lineage)."""
        d = asdict(self)
        d["api_key"] = "***" if self.api_key else ""
        return d

    def with_overrides(self, **overrides: Any) -> GenerationConfig:
        names = {f.name for f in fields(self)}
        bad = sorted(set(overrides) - names)
        if bad:
            raise InvalidInputError(f"generation config: unknown field(s) {bad}")
        return replace(self, **overrides)

    @classmethod
    def from_env(cls, **overrides: Any) -> GenerationConfig:
        """Defaults, then environment variables, then ``overrides``."""
        values: dict[str, Any] = {}
        for name, var in _ENV.items():
            if os.environ.get(var):
                values[name] = os.environ[var]
        if os.environ.get("GME_DATA_LLM_BASE_URL") and "GME_DATA_LLM_BACKEND" not in os.environ:
            values["backend"] = "openai"
        values.update(overrides)
        return cls(**values)

