"""Redaction of secrets (API keys, bearer tokens, URL credentials) from text shown to people.

One helper, :func:`redact`, is applied to every error message, repr, metadata value and lineage
detail that may carry text from a configuration or from a remote server (which may echo the
request's ``Authorization`` header). It removes

- bearer / basic tokens (``Bearer <token>``) and ``sk-...`` style API keys,
- the user-info part of URLs (``https://user:pw@host`` -> ``https://***@host``),
- secret-looking query parameters and JSON / ``key=value`` fields (``api_key``, ``token``, ...),
- any exact value passed in ``secrets`` (e.g. the configured key, whatever its shape).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
#: Values shorter than this are not replaced verbatim (too likely to match ordinary text).
MIN_SECRET_CHARS = 6

_SECRET_NAMES = r"(?:api[_-]?key|apikey|access[_-]?token|auth[_-]?token|token|secret|password|passwd)"
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b(Bearer|Basic|Token)\s+[^\s\"',;]+", re.IGNORECASE), rf"\1 {MASK}"),
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{6,}"), f"sk-{MASK}"),
    (re.compile(r"\b([a-z][a-z0-9+.\-]*://)[^\s/@\"']+@", re.IGNORECASE), rf"\1{MASK}@"),
    (re.compile(rf"([?&;]{_SECRET_NAMES}=)[^&\s\"']+", re.IGNORECASE), rf"\1{MASK}"),
    (re.compile(rf"([\"']?{_SECRET_NAMES}[\"']?\s*[:=]\s*[\"']?)[^\s\"',;}}&]+", re.IGNORECASE), rf"\1{MASK}"),
)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with keys, tokens, URL credentials and the given ``secrets`` replaced by ``***``."""
    out = str(text)
    for secret in sorted({s for s in secrets if s and len(s) >= MIN_SECRET_CHARS}, key=len, reverse=True):
        out = out.replace(secret, MASK)
    for pattern, replacement in _PATTERNS:
        out = pattern.sub(replacement, out)
    return out


def redact_value(value: Any, secrets: Iterable[str] = ()) -> Any:
    """:func:`redact` applied to every string inside ``value`` (dicts, lists and tuples are walked)."""
    secrets = tuple(secrets)
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        return {k: redact_value(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact_value(v, secrets) for v in value)
    return value


def redact_url(url: str, mask_credentials: bool = True) -> str:
    """``url`` normalised for display and identity: lower-case scheme and host, no default port, no
    query or fragment, no trailing slash; user-info (``user:pw@``) becomes ``***@`` (dropped when
    ``mask_credentials`` is false).
    """
    if not url:
        return url
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is not None and (scheme, port) not in (("http", 80), ("https", 443)):
        host = f"{host}:{port}"
    if mask_credentials and (parts.username is not None or parts.password is not None):
        host = f"{MASK}@{host}"
    return urlunsplit((scheme, host, parts.path.rstrip("/"), "", ""))
