"""Batch mode: the provider's Batch API (OpenAI's shape; vLLM's ``run_batch`` reads the same JSONL).

A batch run goes in rounds. Each round runs the stage as usual, but a request the cache cannot
answer is collected (:class:`BatchCollector`) instead of sent. The collected requests become one
JSONL file (one line per request: ``custom_id`` = its cache key, ``body`` = exactly the interactive
request body), uploaded with ``files.create``; ``batches.create`` starts the batch and its id is
written to the ``llm_batches`` table of the cache file at once. The step then waits, polling
``batches.retrieve`` every ``batch_poll_s`` (a *resumable wait inside the step*: the asset keeps
its one-materialization-one-table contract and needs no sensor or second asset; a process that
dies or a step that gives up after ``batch_max_wait_s`` loses nothing, because the next run
computes the same request set, finds the open batch by that set in ``llm_batches`` and resumes
waiting for it instead of submitting again). Answers from the output file go into the response
cache under their keys; the next round reads them from the cache and validates them with the
same code as interactive answers, and asks what depends on them (entity rewrites, retries of
invalid answers with the next seed). Lines in the error file, lines an expired batch left
undone and the lines of a failed batch are not cached, so the next round sends only those again.
After ``batch_max_rounds`` batches, requests still unanswered are dropped with reason
``retry_budget_exhausted`` like interactive requests whose retries ran out. Fresh tokens are
priced with the batch prices (``GenerationConfig.batch_prices``).
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import openai

from gme_data.generation.budget import Budget, Reservation
from gme_data.generation.cache import CachedResponse, ResponseCache
from gme_data.generation.errors import GenerationError

TERMINAL = ("completed", "failed", "expired", "cancelled")
BATCH_LINE_FAILED = "batch_line_failed"
BATCH_UNANSWERED = "batch_unanswered"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS llm_batches (
    batch_id VARCHAR PRIMARY KEY, request_set VARCHAR, endpoint VARCHAR, model VARCHAR, input_file_id VARCHAR,
    n_lines INTEGER, status VARCHAR, collected BOOLEAN, answered INTEGER, failed INTEGER,
    created_at TIMESTAMP, updated_at TIMESTAMP
)
"""


@dataclass
class PendingRequest:
    key: str
    p_hash: str
    params: dict[str, Any]
    body: dict[str, Any]
    prompt: str
    reservation: Reservation | None


class BatchCollector:
    """The requests one round could not answer from the cache (thread-safe)."""

    def __init__(self, budget: Budget | None = None) -> None:
        self.pending: dict[str, PendingRequest] = {}
        self.budget = budget
        self._lock = threading.Lock()

    def add(self, key: str, p_hash: str, params: dict[str, Any], body: dict[str, Any], prompt: str,
            reservation: Reservation | None) -> None:
        with self._lock:
            if key in self.pending:  # the same prompt twice in a round: one line, one reservation
                if reservation is not None and self.budget is not None:
                    self.budget.release(reservation)
                return
            self.pending[key] = PendingRequest(key, p_hash, params, body, prompt, reservation)


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class BatchRunner:
    """Submits (or resumes), waits for and collects one batch per round for a :class:`ChatClient`."""

    def __init__(self, client: Any, cache: ResponseCache, sleep: Callable[[float], None] = time.sleep):
        self.client = client
        self.cache = cache
        self.config = client.config
        self._sleep = sleep
        self.batches: list[dict[str, Any]] = []
        with cache.connection() as con:
            con.execute(_SCHEMA)

    # ---- persistence ---------------------------------------------------------------------
    def _request_set(self, pending: dict[str, PendingRequest]) -> str:
        blob = json.dumps({"endpoint": self.config.endpoint_identity(), "keys": sorted(pending)})
        return hashlib.sha256(blob.encode()).hexdigest()

    def _open_batch(self, request_set: str) -> str | None:
        with self.cache.connection() as con:
            row = con.execute("SELECT batch_id FROM llm_batches WHERE request_set = ? AND NOT collected "
                              "ORDER BY created_at DESC LIMIT 1", [request_set]).fetchone()
        return row[0] if row else None

    def _save(self, batch_id: str, **values: Any) -> None:
        sets = ", ".join(f"{k} = ?" for k in values)
        with self.cache.connection() as con:
            con.execute(f"UPDATE llm_batches SET {sets}, updated_at = ? WHERE batch_id = ?",
                        [*values.values(), _now(), batch_id])

    # ---- one round -----------------------------------------------------------------------
    def run(self, pending: dict[str, PendingRequest]) -> dict[str, Any]:
        """Submit or resume the batch for ``pending``, wait for it and cache its answers."""
        request_set = self._request_set(pending)
        batch_id = self._open_batch(request_set)
        resumed = batch_id is not None
        if batch_id is None:
            batch_id = self._submit(pending, request_set)
        self.client.ledger.add(requests=len(pending))
        batch = self._wait(batch_id)
        answered, failed = self._collect(batch, pending)
        self._save(batch_id, status=batch.status, collected=True, answered=answered, failed=failed)
        summary = {"batch_id": batch_id, "status": batch.status, "lines": len(pending), "answered": answered,
                   "failed": failed, "resumed": resumed}
        self.batches.append(summary)
        return summary

    def _submit(self, pending: dict[str, PendingRequest], request_set: str) -> str:
        lines = "".join(json.dumps({"custom_id": p.key, "method": "POST", "url": "/v1/chat/completions",
                                    "body": p.body}, ensure_ascii=False) + "\n" for p in pending.values())
        api = self.client._client
        try:
            uploaded = api.files.create(file=("requests.jsonl", io.BytesIO(lines.encode())), purpose="batch")
            batch = api.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions",
                                       completion_window="24h")
        except openai.OpenAIError as exc:
            raise GenerationError(self.client.redact(f"LLM endpoint {self.client.where}: cannot start a batch "
                                                     f"of {len(pending)} requests: {exc}")) from None
        with self.cache.connection() as con:
            con.execute("INSERT INTO llm_batches VALUES (?, ?, ?, ?, ?, ?, ?, FALSE, 0, 0, ?, ?)",
                        [batch.id, request_set, self.config.endpoint_identity(), self.config.model, uploaded.id,
                         len(pending), batch.status, _now(), _now()])
        return batch.id

    def _wait(self, batch_id: str) -> Any:
        api = self.client._client
        deadline = time.monotonic() + self.config.batch_max_wait_s
        while True:
            try:
                batch = api.batches.retrieve(batch_id)
            except (openai.APIConnectionError, openai.APITimeoutError, openai.InternalServerError,
                    openai.RateLimitError):
                batch = None  # transient: ask again after the poll interval
            if batch is not None:
                self._save(batch_id, status=batch.status)
                if batch.status in TERMINAL:
                    return batch
            if time.monotonic() + self.config.batch_poll_s > deadline:
                state = batch.status if batch is not None else "unreachable"
                raise GenerationError(
                    f"batch {batch_id} at {self.client.where} is still {state} after batch_max_wait_s="
                    f"{self.config.batch_max_wait_s:g}; its id is kept in {self.cache.path} (llm_batches): "
                    "re-materialize to resume waiting for it")
            self._sleep(self.config.batch_poll_s)

    def _lines(self, file_id: str | None) -> list[dict[str, Any]]:
        if not file_id:
            return []
        text = self.client._client.files.content(file_id).text
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def _collect(self, batch: Any, pending: dict[str, PendingRequest]) -> tuple[int, int]:
        client, budget = self.client, self.client.budget
        answered: set[str] = set()
        for line in self._lines(getattr(batch, "output_file_id", None)):
            p = pending.get(line.get("custom_id", ""))
            resp = line.get("response") or {}
            if p is None or resp.get("status_code") != 200 or p.key in answered:
                continue
            body = resp.get("body") or {}
            usage = body.get("usage") or {}
            choices = body.get("choices") or [{}]
            msg = choices[0].get("message") or {}
            pt, ct = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
            response = CachedResponse(msg.get("content"), msg.get("refusal"), pt, ct)
            self.cache.put(p.key, p.p_hash, self.config.model, p.params, response,
                           endpoint=self.config.endpoint_identity())
            client.fresh_keys.add(p.key)
            client.ledger.add(responses=1, prompt_tokens=pt, completion_tokens=ct)
            client.ledger.note(p.prompt, responses=1, prompt_tokens=pt, completion_tokens=ct)
            if p.reservation is not None:
                budget.settle(p.reservation, pt, ct)
            answered.add(p.key)
        failed = [p for k, p in pending.items() if k not in answered]
        for p in failed:
            client.ledger.error(BATCH_LINE_FAILED if batch.status == "completed" else f"batch_{batch.status}")
            if p.reservation is not None:
                budget.release(p.reservation)
        return len(answered), len(failed)


def read_batches(cache: ResponseCache) -> list[dict[str, Any]]:
    """The ``llm_batches`` table (newest last)."""
    with cache.connection() as con:
        con.execute(_SCHEMA)
        df = con.execute("SELECT * FROM llm_batches ORDER BY created_at").df()
    return df.to_dict("records")
