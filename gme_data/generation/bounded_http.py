"""An HTTP transport for the LLM client that bounds every request in time and every response in size.

A per-read timeout does not bound a request: a server that sends one byte per second keeps it open
forever, and nothing stops it from sending gigabytes. :class:`BoundedTransport` (an ``httpx2``
transport, which the ``openai`` package accepts through ``http_client``) enforces both at the
socket:

- **deadline**: every connect, TLS handshake, write and read is given at most the time left until
  the request's wall-clock deadline (the earlier of ``deadline_s`` after the request starts and the
  deadline of an enclosing :func:`deadline_scope`), and fails once it has passed. This also holds
  while the status line and headers arrive, and across redirects within one scope;
- **size**: the body is read here, in full, counting bytes; a declared ``Content-Length`` or a
  running total above ``max_response_bytes`` stops the read and closes the connection. Bodies are
  requested uncompressed; a gzip / deflate body sent anyway is inflated with the same cap.

Proxies come from the environment as for any ``httpx`` client (``HTTP_PROXY`` / ``HTTPS_PROXY`` /
``ALL_PROXY``, ``NO_PROXY``; see :func:`environment_proxy`), decided once for the endpoint.

A broken limit raises :class:`ResponseLimitError` (``kind`` ``"deadline_exceeded"`` or
``"response_too_large"``) naming the endpoint; it is not an ``httpx`` error, so neither the
``openai`` package nor anything else retries or caches it.
"""

from __future__ import annotations

import time
import urllib.request
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any
from urllib.parse import unquote, urlsplit

import httpcore2
import httpx2

DEADLINE_EXCEEDED = "deadline_exceeded"
RESPONSE_TOO_LARGE = "response_too_large"

#: A timeout this close to the deadline counts as the deadline (socket timers are not exact).
_DEADLINE_SLACK_S = 0.05
_DEADLINE: ContextVar[float | None] = ContextVar("gme_data_llm_deadline", default=None)


class ResponseLimitError(Exception):
    """A response took longer than its deadline or was larger than the byte cap."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


class _DeadlinePassed(Exception):
    """Raised by the network layer once the deadline has passed (turned into a ResponseLimitError)."""


@contextmanager
def deadline_scope(at: float) -> Iterator[None]:
    """All bounded-transport I/O inside the block ends by ``time.monotonic()`` value ``at``.

    Scopes nest; the earliest deadline wins. The scope is per thread (a context variable).
    """
    current = _DEADLINE.get()
    token = _DEADLINE.set(at if current is None else min(at, current))
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def _bounded(timeout: float | None) -> float | None:
    """``timeout`` shortened to the time left before the deadline; raises once it has passed."""
    at = _DEADLINE.get()
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise _DeadlinePassed()
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore2.NetworkStream):
    """A network stream whose every operation is bounded by the current deadline."""

    def __init__(self, inner: httpcore2.NetworkStream):
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, timeout=_bounded(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, timeout=_bounded(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore2.NetworkStream:
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, timeout=_bounded(timeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore2.NetworkBackend):
    """The synchronous socket backend, with connects and streams bounded by the current deadline."""

    def __init__(self) -> None:
        self._inner = httpcore2.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore2.NetworkStream:
        return _DeadlineStream(self._inner.connect_tcp(host, port, timeout=_bounded(timeout),
                                                       local_address=local_address, socket_options=socket_options))

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[Any] | None = None) -> httpcore2.NetworkStream:
        return _DeadlineStream(self._inner.connect_unix_socket(path, timeout=_bounded(timeout),
                                                               socket_options=socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def _as_httpx_error(exc: httpcore2.NetworkError | Exception) -> httpx2.TransportError:
    """The ``httpx2`` error of the same name (``ReadTimeout`` -> ``httpx2.ReadTimeout``, ...)."""
    for cls in type(exc).__mro__:
        mapped = getattr(httpx2, cls.__name__, None)
        if isinstance(mapped, type) and issubclass(mapped, httpx2.TransportError):
            return mapped(str(exc))
    return httpx2.TransportError(str(exc))


def environment_proxy(url: str) -> str | None:
    """The proxy URL the environment sets for ``url`` (``<scheme>_PROXY``, else ``ALL_PROXY``), or None
    when there is none or ``NO_PROXY`` exempts the host."""
    parts = urlsplit(url)
    if not parts.hostname or urllib.request.proxy_bypass(parts.hostname):
        return None
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parts.scheme.lower()) or proxies.get("all")
    if not proxy:
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


def _core_proxy(proxy_url: str) -> httpcore2.Proxy:
    parts = urlsplit(proxy_url)
    auth = (unquote(parts.username or ""), unquote(parts.password or "")) if parts.username else None
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return httpcore2.Proxy(url=f"{parts.scheme}://{netloc}{parts.path or '/'}", auth=auth)


class BoundedTransport(httpx2.BaseTransport):
    """An ``httpx2`` transport with a wall-clock deadline per request and a cap on response bytes.

    ``endpoint`` is the name used in error messages (give it without credentials); ``proxy`` an
    optional HTTP(S) proxy URL for every request.
    """

    def __init__(self, endpoint: str, deadline_s: float, max_response_bytes: int, max_connections: int = 16,
                 proxy: str | None = None):
        if deadline_s <= 0 or max_response_bytes <= 0:
            raise ValueError("deadline_s and max_response_bytes must be > 0")
        self.endpoint = endpoint
        self.deadline_s = deadline_s
        self.max_response_bytes = max_response_bytes
        self._pool = httpcore2.ConnectionPool(ssl_context=httpx2.create_ssl_context(),
                                              max_connections=max_connections, keepalive_expiry=5.0,
                                              proxy=_core_proxy(proxy) if proxy else None,
                                              network_backend=_DeadlineBackend())

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        with deadline_scope(time.monotonic() + self.deadline_s):
            at = _DEADLINE.get() or 0.0
            try:
                return self._exchange(request)
            except _DeadlinePassed:
                pass
            except httpcore2.TimeoutException as exc:  # an ordinary timeout, unless it was cut to the deadline
                if time.monotonic() < at - _DEADLINE_SLACK_S:
                    raise _as_httpx_error(exc) from None
            except (httpcore2.ConnectionNotAvailable, httpcore2.NetworkError, httpcore2.ProtocolError,
                    httpcore2.ProxyError, httpcore2.UnsupportedProtocol) as exc:
                raise _as_httpx_error(exc) from None
        raise ResponseLimitError(DEADLINE_EXCEEDED, f"LLM endpoint {self.endpoint}: no complete response within "
                                                    f"the request deadline")

    def _exchange(self, request: httpx2.Request) -> httpx2.Response:
        headers = [(k, v) for k, v in request.headers.raw if k.lower() != b"accept-encoding"]
        headers.append((b"Accept-Encoding", b"identity"))
        timeouts = {k: _bounded(v) for k, v in (request.extensions.get("timeout") or {}).items()}
        core_request = httpcore2.Request(
            method=request.method,
            url=httpcore2.URL(scheme=request.url.raw_scheme, host=request.url.raw_host, port=request.url.port,
                              target=request.url.raw_path),
            headers=headers, content=request.stream, extensions={**request.extensions, "timeout": timeouts})
        response = self._pool.handle_request(core_request)
        try:
            body, decoded = self._read_body(response)
        finally:
            response.close()
        out_headers = [(k, v) for k, v in response.headers
                       if not (decoded and k.lower() in (b"content-encoding", b"content-length"))]
        return httpx2.Response(status_code=response.status, headers=out_headers, stream=httpx2.ByteStream(body),
                               extensions=response.extensions)

    def _too_large(self, what: str) -> ResponseLimitError:
        return ResponseLimitError(RESPONSE_TOO_LARGE, f"LLM endpoint {self.endpoint}: {what} exceeds the cap of "
                                                      f"{self.max_response_bytes} bytes (max_response_bytes)")

    def _read_body(self, response: httpcore2.Response) -> tuple[bytes, bool]:
        """The body (inflated if the server compressed it anyway) and whether it was inflated."""
        cap = self.max_response_bytes
        header = dict((k.lower(), v) for k, v in response.headers)
        declared = header.get(b"content-length", b"").strip()
        if declared.isdigit() and int(declared) > cap:
            raise self._too_large(f"declared response of {int(declared)} bytes")
        encoding = header.get(b"content-encoding", b"identity").strip().lower()
        if encoding in (b"gzip", b"x-gzip", b"deflate"):
            inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header, auto-detected
        elif encoding in (b"", b"identity"):
            inflater = None
        else:
            raise httpx2.DecodingError(f"LLM endpoint {self.endpoint}: unsupported Content-Encoding "
                                       f"{encoding.decode(errors='replace')!r} (identity was requested)")
        parts: list[bytes] = []
        size = 0
        for chunk in response.stream:  # type: ignore[union-attr]
            if inflater is not None:
                try:
                    chunk = inflater.decompress(chunk, cap + 1 - size)
                except zlib.error as exc:
                    raise httpx2.DecodingError(f"LLM endpoint {self.endpoint}: undecodable "
                                               f"{encoding.decode()} body: {exc}") from None
                if inflater.unconsumed_tail:
                    raise self._too_large("inflated response")
            size += len(chunk)
            if size > cap:
                raise self._too_large("response")
            parts.append(chunk)
        return b"".join(parts), inflater is not None

    def close(self) -> None:
        self._pool.close()
