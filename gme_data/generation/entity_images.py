"""Entity images by generation: GME's fallback when the image pool has no good image of an entity.

GME generated an image with a text-to-image model (FLUX.1-dev) when retrieval found none. Here any
OpenAI-compatible images endpoint is asked (``client.images.generate(..., response_format="b64_json")``)
with a prompt built from the entity and a caption (:data:`DEFAULT_PROMPT_TEMPLATE`).

- **safe**: the HTTP client is the LLM client's bounded transport (a wall-clock deadline per request
  and a byte cap sized for images, :data:`DEFAULT_MAX_RESPONSE_BYTES`); the API key is read only from
  an environment variable on the operator's allow-list and masked in every message; the answer is
  base64-decoded and then decoded by :func:`gme_data.images.open_image` (pixel budget, no bombs).
- **stored** content-addressed in the workbench's :class:`~gme_data.images.ImageStore`, like every
  other image.
- **cached** by (endpoint, model, prompt, size, seed) in ``<cache_dir>/generated_images.sqlite``: a
  re-materialization makes no new request while the stored file exists.
- **counted** in :class:`ImageLedger` (requests, retries, generated, cache hits, failures by reason,
  cost = generated images x ``price_per_image``).
- **failures** are results, not exceptions: ``rate_limited`` / ``server_error`` / ``timeout`` /
  ``connection`` after the retry budget (429 / 5xx / timeouts retried with backoff), ``malformed_payload``
  (no ``data[0].b64_json`` or invalid base64), ``unreadable_image`` (the safe decoder refused it),
  ``request_rejected`` (another 4xx), ``deadline_exceeded`` / ``response_too_large``. A wrong key,
  model or URL (401 / 403 / 404) raises :class:`GenerationError`: retrying cannot help.

Off by default (:attr:`ImageGenConfig.enabled`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai
from pydantic import ConfigDict, Field

from gme_data.errors import InvalidInputError
from gme_data.generation.bounded_http import (
    BoundedTransport,
    ResponseLimitError,
    deadline_scope,
    environment_proxy,
)
from gme_data.generation.config import DEFAULT_OPENAI_BASE_URL, api_key_from_env, endpoint_identity
from gme_data.generation.errors import GenerationError
from gme_data.images import MAX_PIXELS, ImageStore, UnreadableImageError, open_image
from gme_data.redaction import redact, redact_url
from gme_data.stage_config import StageConfig

DEFAULT_PROMPT_TEMPLATE = "A photograph of {entity}. {caption}"
#: One 1024x1024 PNG is ~1-3 MB, ~4/3 of that in base64, plus the JSON envelope.
DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024
GENERATED = "generated"
RETRIEVED = "retrieved"
FAILURES = ("rate_limited", "server_error", "timeout", "connection", "malformed_payload", "unreadable_image",
            "request_rejected", "deadline_exceeded", "response_too_large")


class ImageGenConfig(StageConfig):
    """How entity images are generated (all plain values; the ``fused_queries`` asset maps them 1:1).

    - ``enabled`` (False): off by default.
    - ``base_url`` / ``model``: the OpenAI-compatible images endpoint and model ('' = the package default URL).
    - ``api_key_env``: environment variable holding the key (only names on the operator's allow-list,
      ``GME_DATA_LLM_API_KEY_ENVS``; see :func:`gme_data.generation.config.api_key_from_env`).
    - ``size`` ("512x512"), ``seed`` (0, sent as an extra body field; a negative seed sends none).
    - ``threshold``: generate when the pool's best image scores below it (None = the embedder's
      image-score threshold) or the pool is empty.
    - ``prompt_template``: fields ``{entity}`` and ``{caption}``; ``max_caption_chars`` (200).
    - ``price_per_image``: cost accounting. ``timeout_s`` / ``request_deadline_s`` / ``max_response_bytes`` /
      ``max_http_retries`` / ``backoff_base_s`` / ``backoff_max_s``: the client's limits.
    - ``max_pixels``: the safe decoder's pixel budget for generated images.
    """

    model_config = ConfigDict(frozen=True)

    enabled: bool = Field(default=False, description="Generate an entity image with an OpenAI-compatible images "
                          "endpoint when the pool is empty or its best image scores below the threshold (GME "
                          "used FLUX.1-dev)")
    base_url: str = Field(default="", description="Images endpoint, e.g. http://localhost:8000/v1")
    model: str = Field(default="dall-e-2", description="Text-to-image model served by the endpoint")
    api_key_env: str = Field(default="OPENAI_API_KEY", description="Environment variable holding the key (only "
                             "names on the operator's GME_DATA_LLM_API_KEY_ENVS allow-list)")
    size: str = Field(default="512x512", description="Generated image size, WIDTHxHEIGHT")
    seed: int = Field(default=0, description="Seed sent with each request (part of the cache key)")
    threshold: float | None = Field(default=None, description="Generate when the best pool score is below this; "
                                    "None = the embedder's image-score threshold")
    prompt_template: str = DEFAULT_PROMPT_TEMPLATE
    max_caption_chars: int = 200
    price_per_image: float = Field(default=0.0, description="Cost accounting: price per generated image")
    timeout_s: float = 120.0
    request_deadline_s: float = 600.0
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    max_http_retries: int = 3
    backoff_base_s: float = 1.0
    backoff_max_s: float = 30.0
    max_pixels: int = MAX_PIXELS

    def model_post_init(self, _context: Any) -> None:
        try:
            self.prompt_template.format(entity="x", caption="y")
        except (KeyError, IndexError, ValueError) as exc:
            raise InvalidInputError(f"image generation: prompt_template {self.prompt_template!r} may use only "
                                    f"{{entity}} and {{caption}} ({exc})") from exc
        w, _, h = self.size.partition("x")
        if not (w.isdigit() and h.isdigit() and int(w) > 0 and int(h) > 0):
            raise InvalidInputError(f"image generation: size must look like '512x512', got {self.size!r}")
        for name in ("timeout_s", "request_deadline_s", "max_response_bytes", "max_pixels"):
            if getattr(self, name) <= 0:
                raise InvalidInputError(f"image generation: {name} must be > 0, got {getattr(self, name)!r}")
        if self.max_http_retries < 0 or self.price_per_image < 0:
            raise InvalidInputError("image generation: max_http_retries and price_per_image must be >= 0")
        if not self.model:
            raise InvalidInputError("image generation: model is required")

    def public_dict(self) -> dict[str, Any]:
        d = self.as_dict()
        d["base_url"] = redact_url(self.base_url)
        return d


@dataclass
class ImageLedger:
    """Thread-safe accounting of image requests: counts, failures by reason and cost."""

    requests: int = 0
    http_retries: int = 0
    generated: int = 0
    cache_hits: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, n in counts.items():
                setattr(self, name, getattr(self, name) + n)

    def fail(self, reason: str) -> None:
        with self._lock:
            self.failures[reason] = self.failures.get(reason, 0) + 1

    def as_dict(self, price_per_image: float = 0.0) -> dict[str, Any]:
        with self._lock:
            return {"requests": self.requests, "http_retries": self.http_retries, "generated": self.generated,
                    "cache_hits": self.cache_hits, "failures": dict(self.failures),
                    "price_per_image": price_per_image, "cost": round(self.generated * price_per_image, 6)}


@dataclass
class EntityImage:
    """A generated entity image (``path`` in the image store) with its lineage, or why there is none."""

    prompt: str
    model: str
    size: str
    seed: int
    path: str | None = None
    cached: bool = False
    failure: str | None = None
    detail: str = ""

    @property
    def id(self) -> str | None:
        """``gen-<sha1 of the stored PNG>[:16]``: the image's record id in lineage."""
        return None if self.path is None else f"gen-{Path(self.path).stem[:16]}"

    def lineage(self) -> dict[str, Any]:
        return {"image_origin": GENERATED, "prompt": self.prompt, "model": self.model, "size": self.size,
                "seed": self.seed, "cached": self.cached}


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.reason, self.retry_after = reason, retry_after


class _Failed(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


class GeneratedImageCache:
    """(endpoint, model, prompt, size, seed) -> stored image path, in one SQLite file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(self.path, timeout=60) as con:
            con.execute("CREATE TABLE IF NOT EXISTS images (key TEXT PRIMARY KEY, image TEXT, meta TEXT)")

    @staticmethod
    def key(endpoint: str, model: str, prompt: str, size: str, seed: int) -> str:
        return hashlib.sha256(json.dumps([endpoint, model, prompt, size, seed]).encode()).hexdigest()

    def get(self, key: str) -> str | None:
        with sqlite3.connect(self.path, timeout=60) as con:
            row = con.execute("SELECT image FROM images WHERE key = ?", (key,)).fetchone()
        return row[0] if row and Path(row[0]).is_file() else None

    def put(self, key: str, image: str, meta: dict[str, Any]) -> None:
        with sqlite3.connect(self.path, timeout=60) as con:
            con.execute("INSERT OR REPLACE INTO images VALUES (?, ?, ?)", (key, image, json.dumps(meta)))


class EntityImageGenerator:
    """Generates, decodes, stores and caches entity images (see the module docstring)."""

    def __init__(self, config: ImageGenConfig, store: ImageStore, cache_dir: str | Path,
                 ledger: ImageLedger | None = None, sleep: Callable[[float], None] = time.sleep,
                 api_key: str | None = None):
        self.config, self.store = config, store
        self.ledger = ledger or ImageLedger()
        self.cache = GeneratedImageCache(Path(cache_dir) / "generated_images.sqlite")
        self._sleep = sleep
        key = api_key if api_key is not None else api_key_from_env(config.api_key_env)
        self._secrets = (key,) if key else ()
        self.endpoint = endpoint_identity(config.base_url)
        self.where = f"{redact_url(config.base_url) or 'api.openai.com'} (model {config.model!r})"
        from gme_data.generation.client import _ClosingHttpClient

        transport = BoundedTransport(f"images {self.where}", config.request_deadline_s, config.max_response_bytes,
                                     proxy=environment_proxy(config.base_url or DEFAULT_OPENAI_BASE_URL))
        http = _ClosingHttpClient(transport=transport, timeout=config.timeout_s, follow_redirects=True)
        self._client = openai.OpenAI(base_url=config.base_url or None, api_key=key or "not-needed",
                                     timeout=config.timeout_s, max_retries=0, http_client=http)

    def close(self) -> None:
        self._client.close()

    def prompt(self, entity: str, caption: str | None) -> str:
        cap = " ".join((caption or "").split())[: self.config.max_caption_chars]
        return " ".join(self.config.prompt_template.format(entity=entity, caption=cap).split())

    def generate(self, entity: str, caption: str | None = None) -> EntityImage:
        """An :class:`EntityImage` for ``entity`` (from the cache when this exact request was made before)."""
        cfg = self.config
        out = EntityImage(self.prompt(entity, caption), cfg.model, cfg.size, cfg.seed)
        key = GeneratedImageCache.key(self.endpoint, cfg.model, out.prompt, cfg.size, cfg.seed)
        hit = self.cache.get(key)
        if hit is not None:
            self.ledger.add(cache_hits=1)
            out.path, out.cached = hit, True
            return out
        try:
            data = self._request(out.prompt)
            img = open_image(data, max_pixels=cfg.max_pixels)
        except _Failed as exc:
            out.failure, out.detail = exc.reason, exc.detail
        except UnreadableImageError as exc:
            out.failure, out.detail = "unreadable_image", self._redact(str(exc))
        else:
            out.path = str(self.store.put(img))
            self.ledger.add(generated=1)
            self.cache.put(key, out.path, {"endpoint": self.endpoint, **out.lineage()})
            return out
        self.ledger.fail(out.failure)
        return out

    # ---- HTTP ------------------------------------------------------------------------------
    def _redact(self, text: str) -> str:
        return redact(text, self._secrets)

    def _request(self, prompt: str) -> bytes:
        cfg = self.config
        deadline = None
        for retry in range(cfg.max_http_retries + 1):
            if deadline is None:
                deadline = time.monotonic() + cfg.request_deadline_s
            try:
                with deadline_scope(deadline):
                    return self._send(prompt)
            except _Retryable as exc:
                if retry >= cfg.max_http_retries:
                    raise _Failed(exc.reason, f"images endpoint {self.where}: {exc.reason} after "
                                              f"{retry + 1} attempt(s)") from None
                delay = min(cfg.backoff_max_s, cfg.backoff_base_s * 2 ** retry) * (0.5 + random.random() / 2)
                if exc.retry_after is not None:
                    delay = max(delay, min(exc.retry_after, cfg.backoff_max_s))
                if time.monotonic() + delay >= deadline:
                    raise _Failed("deadline_exceeded", f"images endpoint {self.where}: no image within "
                                                       f"request_deadline_s={cfg.request_deadline_s}") from None
                self.ledger.add(http_retries=1)
                self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _send(self, prompt: str) -> bytes:
        cfg = self.config
        self.ledger.add(requests=1)
        kwargs: dict[str, Any] = {"model": cfg.model, "prompt": prompt, "size": cfg.size, "n": 1,
                                  "response_format": "b64_json"}
        if cfg.seed >= 0:
            kwargs["extra_body"] = {"seed": cfg.seed}
        failure: Exception
        try:  # errors are raised after the except blocks, so nothing carrying server text is chained
            response = self._client.images.generate(**kwargs)
        except ResponseLimitError as exc:
            failure = _Failed(exc.kind, self._redact(str(exc)))
        except openai.APITimeoutError:
            failure = _Retryable("timeout")
        except openai.APIConnectionError:
            failure = _Retryable("connection")
        except (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError) as exc:
            failure = GenerationError(self._redact(f"images endpoint {self.where} refused the request "
                                                   f"({exc.status_code}): {exc.message}; check base_url, model "
                                                   f"and api_key_env"))
        except openai.APIStatusError as exc:
            if exc.status_code == 429:
                failure = _Retryable("rate_limited", _retry_after(exc))
            elif exc.status_code >= 500 or exc.status_code in (408, 409):
                failure = _Retryable("server_error", _retry_after(exc))
            else:
                failure = _Failed("request_rejected", self._redact(f"{exc.status_code}: {exc.message}"))
        except (ValueError, TypeError) as exc:  # a body the package cannot parse at all
            failure = _Failed("malformed_payload", self._redact(f"images endpoint {self.where}: {exc}"))
        else:
            return self._image_bytes(response)
        raise failure

    def _image_bytes(self, response: Any) -> bytes:
        data = getattr(response, "data", None)
        b64 = getattr(data[0], "b64_json", None) if isinstance(data, list) and data else None
        if not isinstance(b64, str) or not b64:
            raise _Failed("malformed_payload", f"images endpoint {self.where}: no data[0].b64_json in the answer")
        try:
            return base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise _Failed("malformed_payload", f"images endpoint {self.where}: b64_json is not base64 "
                                               f"({exc})") from None


def _retry_after(exc: openai.APIStatusError) -> float | None:
    try:
        value = exc.response.headers.get("retry-after")
        return float(value) if value is not None else None
    except (AttributeError, ValueError):
        return None
