"""Query generation for the ``generated_queries`` stage (doc2query, entity rewrite, caption queries).

Three backends share one output schema and lineage: ``"local"`` (the default: llama.cpp's
OpenAI-compatible server started on loopback for a GGUF, by default the bundled SmolLM2-135M),
``"openai"`` (any OpenAI-compatible chat endpoint by URL) and ``"offline-rules"`` (deterministic rules).
The LLM backends share one client: cached in DuckDB, with retries and accounting.
Entry point: :func:`generate_queries`.
"""

from gme_data.generation.budget import Budget, BudgetExceeded
from gme_data.generation.cache import ResponseCache
from gme_data.generation.client import ChatClient, Ledger, build_messages, image_data_url, parse_json_answer
from gme_data.generation.config import BACKENDS, STYLES, GenerationConfig
from gme_data.generation.domains import DOMAINS, GENERIC_REFERENCE, canonical_domain, generic_reference
from gme_data.generation.errors import GenerationError
from gme_data.generation.local_server import GgufModel, LocalLLMServer, resolve_gguf
from gme_data.generation.offline import offline_caption_query, offline_doc2query
from gme_data.generation.prompts import PromptTemplate, load_prompt
from gme_data.generation.quality import check_query
from gme_data.generation.report import RunReport
from gme_data.generation.stage import (
    INPUT_COLUMNS,
    OUTPUT_COLUMNS,
    STAGE,
    GenerationResult,
    generate_queries,
    parse_candidates,
)

__all__ = [
    "BACKENDS", "DOMAINS", "GENERIC_REFERENCE", "INPUT_COLUMNS", "OUTPUT_COLUMNS", "STAGE", "STYLES",
    "Budget", "BudgetExceeded", "ChatClient", "GenerationConfig", "GenerationError", "GenerationResult", "GgufModel", "Ledger",
    "LocalLLMServer", "PromptTemplate", "resolve_gguf",
    "ResponseCache", "RunReport", "build_messages", "canonical_domain", "check_query", "generate_queries",
    "generic_reference", "image_data_url", "load_prompt", "offline_caption_query", "offline_doc2query",
    "parse_candidates", "parse_json_answer",
]
