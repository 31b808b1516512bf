"""A chat client for any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, LM Studio).

It adds what a data pipeline needs on top of the ``openai`` package: a response cache, a
requests-per-minute limit shared by all threads, retries with exponential backoff on 429 / 5xx /
timeouts (the package's own retries are disabled), structured JSON answers validated against a
schema with a bounded budget for invalid or refused answers, and token / cost accounting.

Limits (see :mod:`gme_data.generation.bounded_http`): ``timeout_s`` bounds each connect / read /
write; ``request_deadline_s`` bounds one completion in wall-clock time, from its first attempt to
its last byte, *including* every HTTP retry, rate-limit wait and backoff sleep (a retry that cannot
start before the deadline is not made); ``max_response_bytes`` caps each response body. Invalid or
refused answers are retried as new completions, each with its own deadline. A broken limit is a
``deadline_exceeded`` / ``response_too_large`` failure of that request, naming the endpoint; it is
never cached. Every message that may carry server text or configuration is passed through
:func:`gme_data.redaction.redact`, with the configured key as a known secret.
"""

from __future__ import annotations

import base64
import io
import json
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import jsonschema
import openai

from gme_data.generation.bounded_http import (
    DEADLINE_EXCEEDED,
    BoundedTransport,
    ResponseLimitError,
    deadline_scope,
    environment_proxy,
)
from gme_data.generation.bounded_http import RESPONSE_TOO_LARGE as RESPONSE_TOO_LARGE
from gme_data.generation.budget import Budget
from gme_data.generation.cache import CachedResponse, ResponseCache, cache_key, prompt_hash
from gme_data.generation.config import DEFAULT_OPENAI_BASE_URL, GenerationConfig
from gme_data.generation.errors import GenerationError
from gme_data.generation.prompts import PromptTemplate
from gme_data.generation.tokens import fallback_count
from gme_data.images import open_image
from gme_data.redaction import redact, redact_url

#: Failure reasons a structured call can end with (also lineage drop reasons).
INVALID_JSON = "invalid_json"
SCHEMA_MISMATCH = "schema_mismatch"
REFUSED = "refused"
RETRY_BUDGET_EXHAUSTED = "retry_budget_exhausted"
REQUEST_ERROR = "request_error"
DEFERRED = "deferred"  # batch mode, internal: the answer comes with the next batch
# DEADLINE_EXCEEDED and RESPONSE_TOO_LARGE (imported above) are failure reasons too.

_REFUSAL = re.compile(r"^\W*(i'?m sorry|i am sorry|sorry,? but|i can(?:no|')t|i cannot|i won'?t|i'?m unable|"
                      r"i am unable|as an ai)", re.IGNORECASE)
_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)

#: How each endpoint takes a JSON schema, learnt on its first structured request and remembered:
#: ``json_schema`` (OpenAI, vLLM) or ``json_object`` with a ``schema`` field (llama.cpp's Python
#: server, which answers HTTP 500 to ``json_schema``).
SCHEMA_MODE_BY_ENDPOINT: dict[str, str] = {}
_SCHEMA_PROBE_LOCK = threading.Lock()
JSON_SCHEMA_UNSUPPORTED = "json_schema_unsupported"


def image_data_url(path: str | Path, max_side: int = 768) -> str:
    """The image at ``path`` as a ``data:image/jpeg;base64,...`` URL, longest side at most ``max_side``."""
    img = open_image(path)
    img.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def build_messages(system: str, user: str, image_url: str | None = None) -> list[dict[str, Any]]:
    """Chat messages; with ``image_url`` the user turn is multimodal (text part + image part)."""
    messages: list[dict[str, Any]] = []
    if system:
        messages.append({"role": "system", "content": system})
    if image_url is None:
        messages.append({"role": "user", "content": user})
    else:
        messages.append({"role": "user", "content": [
            {"type": "text", "text": user},
            {"type": "image_url", "image_url": {"url": image_url}},
        ]})
    return messages


def parse_json_answer(content: str | None, refusal: str | None,
                      schema: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None, str]:
    """(data, failure reason, detail) for one answer: refused / invalid_json / schema_mismatch or ok."""
    if refusal:
        return None, REFUSED, refusal[:200]
    text = (content or "").strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    if not text.startswith("{") and "{" in text and "}" in text:
        text = text[text.index("{"): text.rindex("}") + 1]
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        if _REFUSAL.match(content or ""):
            return None, REFUSED, (content or "")[:200]
        return None, INVALID_JSON, f"{exc.msg} at char {exc.pos}: {(content or '')[:120]!r}"
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(data), key=lambda e: list(e.path))
    if errors:
        where = "/".join(str(p) for p in errors[0].path) or "<root>"
        return None, SCHEMA_MISMATCH, f"{where}: {errors[0].message}"
    return {k: v.strip() if isinstance(v, str) else v for k, v in data.items()}, None, ""


@dataclass
class Ledger:
    """Thread-safe run accounting: requests, retries, cache hits, tokens, cost."""

    requests: int = 0
    responses: int = 0
    cache_hits: int = 0
    http_retries: int = 0
    invalid_responses: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0
    cached_completion_tokens: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    #: Per prompt (``name@version``): fresh ``responses``, ``cache_hits`` and their tokens.
    by_prompt: dict[str, dict[str, int]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, n in counts.items():
                setattr(self, name, getattr(self, name) + n)

    def note(self, prompt: str, **counts: int) -> None:
        """Add ``counts`` to the per-prompt usage of ``prompt`` (``name@version``)."""
        with self._lock:
            row = self.by_prompt.setdefault(prompt, {"responses": 0, "cache_hits": 0, "prompt_tokens": 0,
                                                     "completion_tokens": 0})
            for name, n in counts.items():
                row[name] = row.get(name, 0) + n

    def error(self, kind: str) -> None:
        with self._lock:
            self.errors[kind] = self.errors.get(kind, 0) + 1

    def cost(self, price_prompt_per_1k: float, price_completion_per_1k: float) -> float:
        """Estimated spend of this run's fresh (uncached) responses."""
        return round(self.prompt_tokens / 1000 * price_prompt_per_1k
                     + self.completion_tokens / 1000 * price_completion_per_1k, 6)

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {"requests": self.requests, "responses": self.responses, "cache_hits": self.cache_hits,
                    "http_retries": self.http_retries, "invalid_responses": self.invalid_responses,
                    "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                    "cached_prompt_tokens": self.cached_prompt_tokens,
                    "cached_completion_tokens": self.cached_completion_tokens, "http_errors": dict(self.errors),
                    "by_prompt": {k: dict(v) for k, v in self.by_prompt.items()}}


class RateLimiter:
    """Spaces request starts at least ``60 / per_minute`` seconds apart across threads (0 = no limit)."""

    def __init__(self, per_minute: float, sleep: Callable[[float], None] = time.sleep):
        self.interval = 60.0 / per_minute if per_minute > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()
        self._sleep = sleep

    def wait(self) -> None:
        if self.interval <= 0:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            self._sleep(start - now)


@dataclass
class StructuredResult:
    """A validated JSON answer (``data``) or the reason it failed; ``keys`` are the cache keys used."""

    data: dict[str, Any] | None
    reason: str | None = None
    detail: str = ""
    keys: list[str] = field(default_factory=list)
    attempts: int = 0


class _Transient(Exception):
    """A retryable transport failure (429, 5xx, timeout, connection)."""

    def __init__(self, kind: str, retry_after: float | None = None):
        super().__init__(kind)
        self.kind = kind
        self.retry_after = retry_after


class ChatClient:
    """Structured chat completions with caching, rate limiting, backoff and accounting."""

    def __init__(self, config: GenerationConfig, cache: ResponseCache | None = None,
                 ledger: Ledger | None = None, sleep: Callable[[float], None] = time.sleep,
                 health: Callable[[], str | None] | None = None, budget: Budget | None = None,
                 count_prompt: Callable[[list[dict[str, Any]]], int] | None = None):
        self.config = config
        #: The run's spending cap (see :mod:`gme_data.generation.budget`); ``count_prompt`` estimates a
        #: request's prompt tokens for its reservation (the documented fallback when not given).
        self.budget = budget
        self.count_prompt = count_prompt or fallback_count
        #: Batch mode (see :mod:`gme_data.generation.batch`): uncached requests are collected here instead of
        #: sent; keys answered by this run's batches are not counted again as cache hits; ``give_up`` ends
        #: requests still unanswered after the last batch as that failure.
        self.defer: Any = None
        self.fresh_keys: set[str] = set()
        self.give_up: str | None = None
        #: Called after a transport failure: a message when the endpoint is gone for good (a local
        #: server that exited), which ends the run with a :class:`GenerationError` instead of retries.
        self.health = health
        self.cache = cache
        self.ledger = ledger or Ledger()
        self._sleep = sleep
        self.limiter = RateLimiter(config.requests_per_minute, sleep)
        api_key = config.resolved_api_key()
        self._secrets = tuple(k for k in (api_key, config.api_key) if k and k != "not-needed")
        self.where = f"{redact_url(config.base_url) or 'api.openai.com'} (model {config.model!r})"
        transport = BoundedTransport(self.where, config.request_deadline_s, config.response_byte_cap(),
                                     max_connections=config.concurrency + 4,
                                     proxy=environment_proxy(config.base_url or DEFAULT_OPENAI_BASE_URL))
        http_client = _ClosingHttpClient(transport=transport, timeout=config.timeout_s, follow_redirects=True)
        self._client = openai.OpenAI(base_url=config.base_url or None, api_key=api_key,
                                     timeout=config.timeout_s, max_retries=0, http_client=http_client)
        self._endpoint = config.endpoint_identity()

    def redact(self, text: str) -> str:
        """``text`` with this client's key, bearer tokens and URL credentials masked."""
        return redact(text, self._secrets)

    def close(self) -> None:
        """Close the HTTP connections (also done when the client is garbage-collected)."""
        self._client.close()

    # ---- one request ---------------------------------------------------------------------
    def _params(self, template: PromptTemplate, attempt: int) -> dict[str, Any]:
        return {"temperature": self.config.temperature, "max_tokens": self.config.max_tokens,
                "seed": self.config.seed + attempt, "response_format": self.config.response_format,
                "schema": template.name if self.config.response_format == "json_schema" else None}

    def request_key(self, template: PromptTemplate, messages: list[dict[str, Any]], attempt: int = 0) -> str:
        """The cache key of ``messages`` asked with ``template`` (``attempt`` 0 = the first try)."""
        return cache_key(prompt_hash(messages), self.config.model, self._params(template, attempt),
                         endpoint=self._endpoint)

    def _response_format(self, template: PromptTemplate) -> dict[str, Any] | None:
        fmt = self.config.response_format
        if fmt == "json_object":
            return {"type": "json_object"}
        if fmt == "json_schema":
            if SCHEMA_MODE_BY_ENDPOINT.get(self._schema_key()) == "json_object":
                return {"type": "json_object", "schema": template.schema}
            return {"type": "json_schema",
                    "json_schema": {"name": template.name, "schema": template.schema, "strict": True}}
        return None

    def _schema_key(self) -> str:
        """Where the learnt JSON-schema mode is remembered: the server's URL (probed once per server)."""
        return self.config.base_url or DEFAULT_OPENAI_BASE_URL

    def _create(self, kwargs: dict[str, Any], template: PromptTemplate) -> Any:
        """One ``chat.completions.create``; the first ``json_schema`` request to an endpoint also learns
        whether it takes that format or needs ``json_object`` + ``schema`` (one extra request, once)."""
        fmt = kwargs.get("response_format") or {}
        endpoint = self._schema_key()
        if fmt.get("type") != "json_schema" or endpoint in SCHEMA_MODE_BY_ENDPOINT:
            return self._client.chat.completions.create(**kwargs)
        with _SCHEMA_PROBE_LOCK:  # one probe per endpoint; other threads wait for its verdict
            if endpoint in SCHEMA_MODE_BY_ENDPOINT:
                return self._create({**kwargs, "response_format": self._response_format(template)}, template)
            try:
                completion = self._client.chat.completions.create(**kwargs)
            except openai.APIStatusError as exc:
                if exc.status_code not in (400, 422, 500) or not _rejects_json_schema(exc):
                    raise
                self.ledger.error(JSON_SCHEMA_UNSUPPORTED)
                self.ledger.add(requests=1)
                fallback = {**kwargs, "response_format": {"type": "json_object", "schema": template.schema}}
                completion = self._client.chat.completions.create(**fallback)
                SCHEMA_MODE_BY_ENDPOINT[endpoint] = "json_object"
                return completion
            SCHEMA_MODE_BY_ENDPOINT[endpoint] = "json_schema"
            return completion

    def complete(self, template: PromptTemplate, messages: list[dict[str, Any]],
                 attempt: int = 0) -> tuple[CachedResponse, str]:
        """One completion (cached), with retries on transient errors. Returns (response, cache key).

        Raises :class:`GenerationError` for configuration errors (401/403/404), ``_Transient`` once the
        retry budget is spent and :class:`ResponseLimitError` past ``request_deadline_s`` or
        ``max_response_bytes`` (see the module docstring).
        """
        params = self._params(template, attempt)
        p_hash = prompt_hash(messages)
        key = self.request_key(template, messages, attempt)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                if key not in self.fresh_keys:
                    self.ledger.add(cache_hits=1, cached_prompt_tokens=hit.prompt_tokens,
                                    cached_completion_tokens=hit.completion_tokens)
                    self.ledger.note(f"{template.name}@{template.version}", cache_hits=1)
                    if self.config.mode == "batch":  # batch rounds read the cache again: count a hit once
                        self.fresh_keys.add(key)
                return hit, key
            self.cache.release()  # do not hold the file while waiting on the network
        if self.give_up is not None:
            self.ledger.error(self.give_up)
            raise _Transient(self.give_up)
        reservation = None
        if self.budget is not None and self.budget.limited:  # raises BudgetExceeded: nothing is sent
            reservation = self.budget.reserve(self.count_prompt(messages), self.config.max_tokens)
        if self.defer is not None:
            self.defer.add(key, p_hash, params, self.request_body(template, messages, params),
                           f"{template.name}@{template.version}", reservation)
            raise Deferred(key)
        try:
            response = self._send_with_retries(template, messages, params)
        except BaseException:
            if reservation is not None:
                self.budget.release(reservation)  # type: ignore[union-attr]
            raise
        if reservation is not None:
            self.budget.settle(reservation, response.prompt_tokens, response.completion_tokens)  # type: ignore[union-attr]
        self.ledger.note(f"{template.name}@{template.version}", responses=1, prompt_tokens=response.prompt_tokens,
                         completion_tokens=response.completion_tokens)
        if self.cache is not None:
            self.cache.put(key, p_hash, self.config.model, params, response, endpoint=self._endpoint)
        return response, key

    def _send_with_retries(self, template: PromptTemplate, messages: list[dict[str, Any]],
                           params: dict[str, Any]) -> CachedResponse:
        deadline: float | None = None
        for retry in range(self.config.max_http_retries + 1):
            self.limiter.wait()
            if deadline is None:  # the clock starts with the first attempt, not in the rate-limit queue
                deadline = time.monotonic() + self.config.request_deadline_s
            try:
                with deadline_scope(deadline):
                    response = self._send(template, messages, params)
                break
            except ResponseLimitError as exc:
                self.ledger.error(exc.kind)
                raise
            except _Transient as exc:
                self.ledger.error(exc.kind)
                problem = self.health() if self.health is not None else None
                if problem:
                    raise GenerationError(f"{problem}; request failed ({exc.kind}) after {retry + 1} "
                                          "attempt(s), the run stops and writes nothing") from exc
                if retry >= self.config.max_http_retries:
                    raise
                delay = self._backoff(retry, exc.retry_after)
                if time.monotonic() + delay >= deadline:
                    self.ledger.error(DEADLINE_EXCEEDED)
                    raise ResponseLimitError(DEADLINE_EXCEEDED, f"LLM endpoint {self.where}: no answer within "
                                             f"request_deadline_s={self.config.request_deadline_s} after "
                                             f"{retry + 1} attempt(s); last error: {exc.kind}") from None
                self.ledger.add(http_retries=1)
                self._sleep(delay)
        return response

    def _backoff(self, retry: int, retry_after: float | None) -> float:
        delay = min(self.config.backoff_max_s, self.config.backoff_base_s * 2 ** retry)
        delay *= 0.5 + random.random() / 2
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.config.backoff_max_s))
        return delay

    def request_body(self, template: PromptTemplate, messages: list[dict[str, Any]],
                     params: dict[str, Any]) -> dict[str, Any]:
        """The JSON body of one chat completion request (also one line of a batch)."""
        kwargs: dict[str, Any] = {"model": self.config.model, "messages": messages,
                                  "temperature": params["temperature"], "max_tokens": params["max_tokens"]}
        if self.config.seed >= 0:  # a negative seed: servers that reject the parameter
            kwargs["seed"] = params["seed"]
        fmt = self._response_format(template)
        if fmt is not None:
            kwargs["response_format"] = fmt
        return kwargs

    def _send(self, template: PromptTemplate, messages: list[dict[str, Any]],
              params: dict[str, Any]) -> CachedResponse:
        self.ledger.add(requests=1)
        kwargs = self.request_body(template, messages, params)
        # errors are raised after the except blocks, so no exception carrying server text (which may echo
        # the key) is chained to them
        failure: Exception
        try:
            completion = self._create(kwargs, template)
        except ResponseLimitError as exc:
            failure = ResponseLimitError(exc.kind, self.redact(
                f"{exc} (request_deadline_s={self.config.request_deadline_s})" if exc.kind == DEADLINE_EXCEEDED
                else str(exc)))
        except openai.APITimeoutError:
            failure = _Transient("timeout")
        except openai.APIConnectionError:
            failure = _Transient("connection")
        except (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError) as exc:
            failure = GenerationError(self.redact(f"LLM endpoint {self.where} refused the request "
                                                  f"({exc.status_code}): {exc.message}; check base_url, model "
                                                  f"and api_key"))
        except openai.APIStatusError as exc:
            if exc.status_code in (408, 409, 429) or exc.status_code >= 500:
                failure = _Transient(str(exc.status_code), _retry_after(exc))
            else:
                failure = _RequestRejected(self.redact(f"{exc.status_code}: {exc.message}"))
        else:
            return self._response(completion)
        raise failure

    def _response(self, completion: Any) -> CachedResponse:
        self.ledger.add(responses=1)
        usage = completion.usage
        pt = int(usage.prompt_tokens or 0) if usage else 0
        ct = int(usage.completion_tokens or 0) if usage else 0
        self.ledger.add(prompt_tokens=pt, completion_tokens=ct)
        msg = completion.choices[0].message if completion.choices else None
        return CachedResponse(msg.content if msg else None, getattr(msg, "refusal", None) if msg else None, pt, ct)

    # ---- structured answers --------------------------------------------------------------
    def structured(self, template: PromptTemplate, values: dict[str, Any],
                   image_url: str | None = None) -> StructuredResult:
        """Render ``template``, ask, validate; retry invalid / refused answers up to the budget."""
        system, user = template.render(**values)
        messages = build_messages(system, user, image_url)
        result = StructuredResult(None)
        for attempt in range(self.config.max_invalid_retries + 1):
            result.attempts = attempt + 1
            try:
                response, key = self.complete(template, messages, attempt)
            except _Transient as exc:
                result.reason, result.detail = RETRY_BUDGET_EXHAUSTED, f"last error: {exc.kind}"
                return result
            except Deferred:
                result.reason, result.detail = DEFERRED, "collected for the next batch"
                return result
            except _RequestRejected as exc:
                result.reason, result.detail = REQUEST_ERROR, str(exc)
                return result
            except ResponseLimitError as exc:
                result.reason, result.detail = exc.kind, str(exc)
                return result
            result.keys.append(key)
            data, reason, detail = parse_json_answer(response.content, response.refusal, template.schema)
            if data is not None:
                result.data, result.reason, result.detail = data, None, ""
                return result
            self.ledger.add(invalid_responses=1)
            result.reason, result.detail = reason, self.redact(detail)
        return result


class _ClosingHttpClient(httpx2.Client):
    """An ``httpx2`` client that closes its connections when garbage-collected (as openai's own does)."""

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001, S110 - interpreter shutdown: nothing left to report to
            pass


class Deferred(Exception):
    """Batch mode: the request was collected for the next batch instead of being sent."""


class _RequestRejected(Exception):
    """A non-retryable 4xx for this one request (e.g. context too long)."""


def _rejects_json_schema(exc: openai.APIStatusError) -> bool:
    """Whether an error answer says the ``json_schema`` response format is not understood."""
    text = f"{exc.message} {getattr(exc, 'body', '')}".lower()
    return "response_format" in text or "json_schema" in text


def _retry_after(exc: openai.APIStatusError) -> float | None:
    try:
        value = exc.response.headers.get("retry-after")
        return float(value) if value is not None else None
    except (AttributeError, ValueError):
        return None
