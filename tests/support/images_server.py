"""A small, real OpenAI-compatible images server on loopback for tests.

``POST /v1/images/generations`` on ``127.0.0.1`` (random free port) answers with real PNGs drawn
from the prompt (a colour derived from the prompt's hash, so the same prompt gives the same image),
records every request, and can be scripted per request (FIFO, default ``"ok"``):

``"ok"``         ``{"data": [{"b64_json": <PNG>}]}``
``"429"``        HTTP 429 with ``Retry-After: 0``
``"500"``        HTTP 500
``"malformed"``  ``{"data": [{"b64_json": "not base64 at all!"}]}``
``"no_data"``    ``{"created": 0}`` (no ``data`` list)
``"bad_image"``  valid base64 of bytes that are not a decodable image (a PNG signature, then garbage)
``"bomb"``       a real PNG whose header claims 20000x20000 pixels (the safe decoder refuses it)
``"401_echo"``   HTTP 401 whose message echoes the request's ``Authorization`` header
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import struct
import threading
import zlib
from collections import deque
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from PIL import Image, ImageDraw

from tests.support.http_replies import write_reply

BEHAVIOURS = ("ok", "429", "500", "malformed", "no_data", "bad_image", "bomb", "401_echo")


def prompt_png(prompt: str, size: str = "64x64") -> bytes:
    """A deterministic PNG for ``prompt``: a coloured background with a contrasting disc."""
    w, _, h = size.partition("x")
    width, height = min(int(w), 256), min(int(h), 256)
    d = hashlib.sha1(prompt.encode()).digest()
    img = Image.new("RGB", (width, height), (d[0], d[1], d[2]))
    ImageDraw.Draw(img).ellipse((width // 4, height // 4, 3 * width // 4, 3 * height // 4),
                                fill=(255 - d[0], 255 - d[1], 255 - d[2]))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def bomb_png(width: int = 20000, height: int = 20000) -> bytes:
    """A tiny PNG whose IHDR declares ``width`` x ``height`` (only the header matters to the decoder)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


class _Handler(BaseHTTPRequestHandler):
    server: ThreadingHTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence stderr logging
        pass

    def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        write_reply(self, status, json.dumps(payload).encode(), headers=headers)

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        owner: ImagesServer = self.server.owner  # type: ignore[attr-defined]
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        if self.path.rstrip("/") != "/v1/images/generations":
            self._send(404, {"error": {"message": f"no route {self.path}"}})
            return
        with owner.lock:
            owner.requests.append({"body": body, "authorization": self.headers.get("Authorization", "")})
            behaviour = owner.queue.popleft() if owner.queue else "ok"
        if behaviour == "429":
            self._send(429, {"error": {"message": "rate limited", "type": "rate_limit"}}, {"Retry-After": "0"})
        elif behaviour == "401_echo":
            self._send(401, {"error": {"message": f"bad key in {self.headers.get('Authorization', '')}"}})
        elif behaviour == "500":
            self._send(500, {"error": {"message": "boom"}})
        elif behaviour == "no_data":
            self._send(200, {"created": 0})
        elif behaviour == "malformed":
            self._send(200, {"created": 0, "data": [{"b64_json": "not base64 at all!"}]})
        else:
            raw = {"bad_image": b"\x89PNG\r\n\x1a\n" + b"garbage" * 20, "bomb": bomb_png()}.get(
                behaviour) or prompt_png(str(body.get("prompt", "")), str(body.get("size", "64x64")))
            self._send(200, {"created": 0, "data": [{"b64_json": base64.b64encode(raw).decode()}]})


class ImagesServer:
    """Context manager: ``with ImagesServer() as s: OpenAI(base_url=s.base_url, ...)``."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.queue: deque[str] = deque()
        self.lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None

    def script(self, behaviours: Iterable[str]) -> None:
        items = list(behaviours)
        bad = [b for b in items if b not in BEHAVIOURS]
        if bad:
            raise ValueError(f"unknown behaviours {bad}; choose from {BEHAVIOURS}")
        with self.lock:
            self.queue.extend(items)

    @property
    def base_url(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> ImagesServer:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self  # type: ignore[attr-defined]
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._httpd is not None
        self._httpd.shutdown()
        self._httpd.server_close()
