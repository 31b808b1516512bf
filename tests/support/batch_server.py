"""The loopback OpenAI-compatible server plus the Files and Batches endpoints (OpenAI Batch API shape).

``POST /v1/files`` (multipart upload, purpose ``batch``), ``GET /v1/files/{id}/content``,
``POST /v1/batches``, ``GET /v1/batches/{id}``. A batch moves one step per retrieve:
``validating`` -> ``in_progress`` -> its outcome, taken from :meth:`BatchServer.outcomes`
(default ``completed``): ``completed`` (every line answered, lines whose text holds a marker given to
:meth:`BatchServer.fail_lines` go to the error file instead), ``failed`` (input rejected, no output)
or ``expired`` (only the first half of the lines answered). :meth:`BatchServer.hold` keeps batches
``in_progress`` until released (to kill a client mid-batch). Each answered line is made like an
interactive answer (same responder, same token counts) and logged, so ``usage_totals`` covers both.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import threading
import time
from collections import deque
from collections.abc import Iterable
from typing import Any

from tests.support.http_replies import write_reply
from tests.support.openai_server import (
    OpenAICompatServer,
    ServedResponse,
    _Handler,
    count_tokens,
    image_urls,
    request_text,
)

OUTCOMES = ("completed", "failed", "expired")


class _BatchState:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.outcomes: deque[str] = deque()
        self.fail_markers: dict[str, int] = {}
        self.release = threading.Event()
        self.release.set()
        self.creates = 0
        self.uploads = 0
        self.counter = 0

    def new_id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.counter}"


class _BatchHandler(_Handler):
    @property
    def batch(self) -> _BatchState:
        return self.server.batch_state  # type: ignore[attr-defined]

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_POST(self) -> None:  # noqa: N802
        path = self.path.rstrip("/")
        if path not in ("/v1/files", "/v1/batches"):
            super().do_POST()
            return
        self._trickle, self._gzip = None, False
        if not self._authorised():
            return
        raw = self._body()
        with self.state.lock:
            if path == "/v1/files":
                self._upload(raw)
            else:
                self._create(json.loads(raw or b"{}"))

    def _upload(self, raw: bytes) -> None:
        head = f"Content-Type: {self.headers.get('Content-Type')}\r\n\r\n".encode()
        msg = email.parser.BytesParser(policy=email.policy.default).parsebytes(head + raw)
        parts = {p.get_param("name", header="content-disposition"): p for p in msg.iter_parts()}
        if "file" not in parts or parts.get("purpose") is None or parts["purpose"].get_content() != "batch":
            self._error(400, "multipart 'file' and purpose=batch are required", "invalid_request_error")
            return
        data = parts["file"].get_payload(decode=True)
        fid = self.batch.new_id("file")
        self.batch.files[fid] = data
        self.batch.uploads += 1
        self._send_json(200, {"id": fid, "object": "file", "bytes": len(data), "created_at": int(time.time()),
                              "filename": parts["file"].get_filename() or "batch.jsonl", "purpose": "batch",
                              "status": "processed"})

    def _create(self, body: dict[str, Any]) -> None:
        fid = body.get("input_file_id")
        if fid not in self.batch.files or body.get("endpoint") != "/v1/chat/completions":
            self._error(400, f"unknown input_file_id {fid!r} or endpoint", "invalid_request_error")
            return
        bid = self.batch.new_id("batch")
        self.batch.creates += 1
        outcome = self.batch.outcomes.popleft() if self.batch.outcomes else "completed"
        self.batch.batches[bid] = {"id": bid, "object": "batch", "endpoint": body["endpoint"],
                                   "input_file_id": fid, "completion_window": body.get("completion_window", "24h"),
                                   "status": "validating", "created_at": int(time.time()), "output_file_id": None,
                                   "error_file_id": None, "errors": None, "_outcome": outcome,
                                   "request_counts": {"total": 0, "completed": 0, "failed": 0}}
        self._send_json(200, self._public(bid))

    def _public(self, bid: str) -> dict[str, Any]:
        return {k: v for k, v in self.batch.batches[bid].items() if not k.startswith("_")}

    def do_GET(self) -> None:  # noqa: N802
        parts = self.path.strip("/").split("/")
        if len(parts) >= 3 and parts[:2] == ["v1", "batches"] or parts[:2] == ["v1", "files"]:
            self._trickle, self._gzip = None, False
            if not self._authorised():
                return
            with self.state.lock:
                if parts[1] == "batches" and parts[2] in self.batch.batches:
                    self._advance(parts[2])
                    self._send_json(200, self._public(parts[2]))
                elif parts[1] == "files" and len(parts) == 4 and parts[3] == "content" \
                        and parts[2] in self.batch.files:
                    write_reply(self, 200, self.batch.files[parts[2]], "application/octet-stream")
                else:
                    self._error(404, f"no such object {self.path}", "not_found")
            return
        super().do_GET()

    def _advance(self, bid: str) -> None:
        b = self.batch.batches[bid]
        if b["status"] == "validating":
            b["status"] = "in_progress"
        elif b["status"] == "in_progress" and self.batch.release.is_set():
            self._finish(b)

    def _finish(self, b: dict[str, Any]) -> None:
        lines = [json.loads(x) for x in self.batch.files[b["input_file_id"]].decode().splitlines() if x.strip()]
        b["request_counts"]["total"] = len(lines)
        if b["_outcome"] == "failed":
            b["status"] = "failed"
            b["errors"] = {"object": "list", "data": [{"code": "invalid_request", "message": "input rejected",
                                                       "line": 1}]}
            return
        answered = lines if b["_outcome"] == "completed" else lines[: len(lines) // 2]
        out, err = [], []
        for line in answered:
            text = request_text(line["body"])
            marker = next((m for m, n in self.batch.fail_markers.items() if n > 0 and m in text), None)
            if marker is not None:
                self.batch.fail_markers[marker] -= 1
                err.append({"id": self.batch.new_id("req"), "custom_id": line["custom_id"], "error": None,
                            "response": {"status_code": 500, "request_id": "r",
                                         "body": {"error": {"message": "server error", "type": "server_error"}}}})
                continue
            out.append({"id": self.batch.new_id("req"), "custom_id": line["custom_id"], "error": None,
                        "response": {"status_code": 200, "request_id": "r", "body": self._answer(line["body"])}})
        for rows, key in ((out, "output_file_id"), (err, "error_file_id")):
            if rows:
                fid = self.batch.new_id("file")
                self.batch.files[fid] = "".join(json.dumps(r) + "\n" for r in rows).encode()
                b[key] = fid
        b["request_counts"].update(completed=len(out), failed=len(err))
        b["status"] = b["_outcome"]

    def _answer(self, body: dict[str, Any]) -> dict[str, Any]:
        st = self.state  # lock held by the caller
        st.requests.append(body)
        content = st.responder(body)
        prompt_tokens = count_tokens(request_text(body)) + 85 * len(image_urls(body))
        completion_tokens = count_tokens(content)
        st.completions += 1
        st.log.append(ServedResponse("batch", 200, prompt_tokens, completion_tokens))
        return {"id": f"chatcmpl-batch-{st.completions}", "object": "chat.completion", "created": int(time.time()),
                "model": body["model"], "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                                                     "message": {"role": "assistant", "content": content,
                                                                 "refusal": None}}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                          "total_tokens": prompt_tokens + completion_tokens}}


class BatchServer(OpenAICompatServer):
    """:class:`OpenAICompatServer` with the Files and Batches endpoints (see the module docstring)."""

    handler_class = _BatchHandler

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.batch_state = _BatchState()

    def start(self) -> BatchServer:
        super().start()
        self._httpd.batch_state = self.batch_state  # type: ignore[union-attr]
        return self

    def outcomes(self, items: Iterable[str]) -> None:
        """Outcomes of the next batches created, in order (``completed``, ``failed``, ``expired``)."""
        items = list(items)
        bad = [o for o in items if o not in OUTCOMES]
        if bad:
            raise ValueError(f"unknown batch outcome(s) {bad}; choose from {OUTCOMES}")
        with self._state.lock:
            self.batch_state.outcomes.extend(items)

    def fail_lines(self, marker: str, times: int = 1) -> None:
        """The next ``times`` batch lines whose text contains ``marker`` land in the error file."""
        with self._state.lock:
            self.batch_state.fail_markers[marker] = times

    def hold(self) -> None:
        """Keep batches ``in_progress`` until :meth:`release`."""
        self.batch_state.release.clear()

    def release(self) -> None:
        self.batch_state.release.set()

    @property
    def batch_creates(self) -> int:
        return self.batch_state.creates

    def batch_statuses(self) -> list[str]:
        with self._state.lock:
            return [b["status"] for b in self.batch_state.batches.values()]
