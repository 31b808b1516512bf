"""Writing a whole HTTP reply from a ``BaseHTTPRequestHandler`` (the loopback test servers share it)."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler


def write_reply(handler: BaseHTTPRequestHandler, status: int, data: bytes, content_type: str = "application/json",
                headers: dict[str, str] | None = None) -> None:
    """Status line, ``Content-Type``, ``Content-Length``, extra ``headers``, then ``data``."""
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(data)))
    for k, v in (headers or {}).items():
        handler.send_header(k, v)
    handler.end_headers()
    handler.wfile.write(data)
