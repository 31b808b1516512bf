"""A small, real OpenAI-compatible HTTP server on loopback for tests.

It implements ``POST /v1/chat/completions`` and ``GET /v1/models`` over ``http.server`` on
``127.0.0.1`` (random free port), answers with ``usage`` token counts, records every request it
receives, and can be scripted per request:

``"ok"``         a JSON answer made by the responder from the request (default behaviour)
``"malformed"``  content that is not JSON
``"refuse"``     a refusal (``message.refusal`` set and refusal text as content)
``"429"``        HTTP 429 with a ``Retry-After`` header
``"500"``        HTTP 500
``"slow"``       waits ``slow_seconds`` before answering (so a client with a shorter timeout gives up)
``"trickle"``    sends the headers, then the body one byte every ``trickle_interval_s`` (for at most
                 ``trickle_max_s``, then it hangs up): every read is fast, the whole answer is not
``"trickle_headers"``  the same, but already the status line and headers arrive byte by byte
``"huge"``       a valid answer whose content is ``huge_bytes`` long (far beyond any ``max_tokens``)
``"401_echo"``   HTTP 401 whose message echoes the request's ``Authorization`` header verbatim
``"400_echo"``   the same with HTTP 400 (a per-request rejection that ends up in lineage)
``"gzip"``       the normal answer, gzip-compressed (``Content-Encoding: gzip``) although not asked for
``"gzip_bomb"``  the ``"huge"`` answer gzip-compressed: a few KB on the wire, ``huge_bytes`` inflated

Behaviours are taken from a FIFO (:meth:`OpenAICompatServer.script`) or, for requests whose text
contains a marker, from a per-marker FIFO (:meth:`OpenAICompatServer.when`), which stays
deterministic when the client sends requests from several threads. Use it as a context manager::

    with OpenAICompatServer() as server:
        client = OpenAI(base_url=server.base_url, api_key="test")
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.http_replies import write_reply

BEHAVIOURS = ("ok", "malformed", "refuse", "429", "500", "slow", "trickle", "trickle_headers", "huge",
              "401_echo", "400_echo", "gzip", "gzip_bomb")
MAX_BODY_BYTES = 32 * 1024 * 1024
REFUSAL_TEXT = "I'm sorry, but I can't help with that request."

Responder = Callable[[dict[str, Any]], str]


def request_text(body: dict[str, Any]) -> str:
    """All text parts of a chat request's messages, joined by newlines."""
    parts: list[str] = []
    for msg in body.get("messages", []):
        content = msg.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return "\n".join(parts)


def image_urls(body: dict[str, Any]) -> list[str]:
    """The ``image_url`` URLs of a chat request (data URLs for inline images)."""
    urls: list[str] = []
    for msg in body.get("messages", []):
        content = msg.get("content")
        if isinstance(content, list):
            urls.extend(p["image_url"]["url"] for p in content
                        if isinstance(p, dict) and p.get("type") == "image_url")
    return urls


def count_tokens(text: str) -> int:
    """The server's token count: whitespace-separated words (deterministic and cheap)."""
    return len(text.split())


def schema_responder(body: dict[str, Any]) -> str:
    """Default responder: fills a ``json_schema`` response format with strings from the prompt.

    Without a schema it answers ``{"text": <first words of the prompt>}``.
    """
    words = request_text(body).split()
    snippet = " ".join(words[-12:]) or "empty prompt"
    fmt = body.get("response_format") or {}
    schema = (fmt.get("json_schema") or {}).get("schema") if fmt.get("type") == "json_schema" else None
    if not schema:
        return json.dumps({"text": snippet})
    out: dict[str, Any] = {}
    for i, (name, spec) in enumerate((schema.get("properties") or {}).items()):
        kind = spec.get("type", "string")
        kind = kind[0] if isinstance(kind, list) else kind
        if kind == "string":
            out[name] = f"{name} {i}: {snippet}"
        elif kind in ("integer", "number"):
            out[name] = i
        elif kind == "boolean":
            out[name] = True
        elif kind == "array":
            out[name] = [snippet]
        else:
            out[name] = {}
    return json.dumps(out)


@dataclass
class ServedResponse:
    """What the server did for one request (kept in :attr:`OpenAICompatServer.log`)."""

    behaviour: str
    status: int
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class _State:
    responder: Responder
    model: str
    api_key: str | None
    slow_seconds: float
    trickle_interval_s: float = 0.05
    trickle_max_s: float = 6.0
    huge_bytes: int = 30 * 1024 * 1024
    queue: deque[str] = field(default_factory=deque)
    by_marker: dict[str, deque[str]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)
    log: list[ServedResponse] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)
    completions: int = 0


class _Handler(BaseHTTPRequestHandler):
    server_version = "gme-test-openai/1.0"
    timeout = 30  # a stuck client cannot hold a handler thread forever

    @property
    def state(self) -> _State:
        return self.server.state  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence stderr logging
        return

    def _send_json(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        if self._trickle is not None:
            self._send_trickled(status, data, headers_too=self._trickle == "trickle_headers")
            return
        if self._gzip:
            data = gzip.compress(data, compresslevel=6)
            headers = {**(headers or {}), "Content-Encoding": "gzip"}
        try:
            write_reply(self, status, data, headers=headers)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (e.g. its timeout)
            pass

    _trickle: str | None = None
    _gzip: bool = False

    def _send_trickled(self, status: int, data: bytes, headers_too: bool) -> None:
        """Write the response one byte per ``trickle_interval_s``; hang up after ``trickle_max_s``."""
        st = self.state
        head = (f"HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(data)}\r\n\r\n").encode()
        stop_at = time.monotonic() + st.trickle_max_s
        blob = head + data if headers_too else data
        try:
            if not headers_too:
                self.wfile.write(head)
            for i in range(len(blob)):
                if time.monotonic() > stop_at or st.stopping.wait(st.trickle_interval_s):
                    break
                self.wfile.write(blob[i:i + 1])
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True

    def _error(self, status: int, message: str, kind: str, headers: dict[str, str] | None = None) -> None:
        self._send_json(status, {"error": {"message": message, "type": kind, "code": status}}, headers)

    def _authorised(self) -> bool:
        if self.state.api_key is None:
            return True
        if self.headers.get("Authorization", "") == f"Bearer {self.state.api_key}":
            return True
        self._error(401, "invalid api key", "invalid_request_error")
        return False

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        if not self._authorised():
            return
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            self._send_json(200, {"object": "list", "data": [
                {"id": self.state.model, "object": "model", "created": 0, "owned_by": "tests"}]})
        else:
            self._error(404, f"no route {self.path}", "not_found")

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        self._trickle, self._gzip = None, False
        with self.state.lock:
            self.state.authorizations.append(self.headers.get("Authorization", ""))
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            self._error(404, f"no route {self.path}", "not_found")
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._error(413, f"body of {length} bytes exceeds {MAX_BODY_BYTES}", "invalid_request_error")
            return
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except json.JSONDecodeError as exc:
            self._error(400, f"request body is not JSON: {exc}", "invalid_request_error")
            return
        if not self._authorised():
            return
        if not isinstance(body.get("messages"), list) or not body.get("model"):
            self._error(400, "'model' and 'messages' are required", "invalid_request_error")
            return
        behaviour = self._next_behaviour(body)
        self._serve(behaviour, body)

    def _next_behaviour(self, body: dict[str, Any]) -> str:
        st = self.state
        text = request_text(body)
        with st.lock:
            st.requests.append(body)
            for marker, q in st.by_marker.items():
                if marker in text and q:
                    return q.popleft()
            return st.queue.popleft() if st.queue else "ok"

    def _record(self, served: ServedResponse) -> None:
        with self.state.lock:
            self.state.log.append(served)

    def _serve(self, behaviour: str, body: dict[str, Any]) -> None:
        st = self.state
        if behaviour == "429":
            self._record(ServedResponse(behaviour, 429))
            self._error(429, "rate limit reached", "rate_limit_error", {"Retry-After": "0"})
            return
        if behaviour == "500":
            self._record(ServedResponse(behaviour, 500))
            self._error(500, "internal server error", "server_error")
            return
        if behaviour in ("401_echo", "400_echo"):
            status = int(behaviour[:3])
            self._record(ServedResponse(behaviour, status))
            echoed = self.headers.get("Authorization", "")
            self._error(status, f"Incorrect API key provided: {echoed}. You passed: {echoed}",
                        "invalid_request_error")
            return
        if behaviour == "slow":
            st.stopping.wait(st.slow_seconds)
        if behaviour in ("trickle", "trickle_headers"):
            self._trickle = behaviour
        self._gzip = behaviour in ("gzip", "gzip_bomb")
        refusal = None
        if behaviour == "malformed":
            content = '{"query": "unterminated'
        elif behaviour == "refuse":
            content, refusal = REFUSAL_TEXT, REFUSAL_TEXT
        elif behaviour in ("huge", "gzip_bomb"):
            content = json.dumps({"query": "a" * st.huge_bytes, "answer": "b"})
        else:
            content = st.responder(body)
        prompt_tokens = count_tokens(request_text(body)) + 85 * len(image_urls(body))
        completion_tokens = count_tokens(content)
        with st.lock:
            st.completions += 1
            n = st.completions
        self._record(ServedResponse(behaviour, 200, prompt_tokens, completion_tokens))
        self._send_json(200, {
            "id": f"chatcmpl-test-{n}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                         "message": {"role": "assistant", "content": content, "refusal": refusal}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        })


class OpenAICompatServer:
    """A scriptable OpenAI-compatible chat server on ``127.0.0.1`` (see the module docstring)."""

    handler_class: type[BaseHTTPRequestHandler] = _Handler

    def __init__(self, responder: Responder | None = None, model: str = "test-model",
                 api_key: str | None = None, slow_seconds: float = 2.0, trickle_interval_s: float = 0.05,
                 trickle_max_s: float = 6.0, huge_bytes: int = 30 * 1024 * 1024):
        self._state = _State(responder or schema_responder, model, api_key, slow_seconds,
                             trickle_interval_s, trickle_max_s, huge_bytes)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle -----------------------------------------------------------------------
    def start(self) -> OpenAICompatServer:
        if self._httpd is not None:
            return self
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), self.handler_class)
        httpd.daemon_threads = True
        httpd.state = self._state  # type: ignore[attr-defined]
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="openai-compat-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._state.stopping.set()  # wakes "slow" handlers
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None

    def __enter__(self) -> OpenAICompatServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- addresses -----------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server is not running; call start() first")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """The ``base_url`` an OpenAI client should use, e.g. ``http://127.0.0.1:54321/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    # ---- scripting -----------------------------------------------------------------------
    def script(self, behaviours: Iterable[str]) -> None:
        """Queue behaviours for the next requests, in order (then ``"ok"``)."""
        items = _checked(behaviours)
        with self._state.lock:
            self._state.queue.extend(items)

    def when(self, marker: str, behaviours: Iterable[str]) -> None:
        """Queue behaviours for requests whose text contains ``marker`` (checked before :meth:`script`)."""
        items = _checked(behaviours)
        with self._state.lock:
            self._state.by_marker.setdefault(marker, deque()).extend(items)

    # ---- what was received ---------------------------------------------------------------
    @property
    def requests(self) -> list[dict[str, Any]]:
        """Bodies of every chat-completion request received, in arrival order."""
        with self._state.lock:
            return list(self._state.requests)

    @property
    def authorizations(self) -> list[str]:
        """The ``Authorization`` header of every POST received (also unauthorised ones), in order."""
        with self._state.lock:
            return list(self._state.authorizations)

    @property
    def request_count(self) -> int:
        with self._state.lock:
            return len(self._state.requests)

    @property
    def log(self) -> list[ServedResponse]:
        with self._state.lock:
            return list(self._state.log)

    def usage_totals(self) -> dict[str, int]:
        """Sum of the ``usage`` the server reported over all 200 responses."""
        log = self.log
        return {"prompt_tokens": sum(r.prompt_tokens for r in log),
                "completion_tokens": sum(r.completion_tokens for r in log),
                "responses": sum(r.status == 200 for r in log)}


def _checked(behaviours: Iterable[str]) -> list[str]:
    items = list(behaviours)
    bad = [b for b in items if b not in BEHAVIOURS]
    if bad:
        raise ValueError(f"unknown server behaviour(s) {bad}; choose from {BEHAVIOURS}")
    return items
