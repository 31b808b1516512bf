"""Markdown text from data, made inert: the Dagster UI renders metadata markdown, and a table cell
holding ``![x](http://...)`` or ``<img src=...>`` must show as text, not fetch or link anything."""

from __future__ import annotations

import re
from typing import Any

# Every ASCII punctuation character may be backslash-escaped in CommonMark; escaping them all keeps
# images, links, autolinks (``http\\:\\/\\/``, ``www\\.``), HTML, emphasis and cell breaks from forming.
_PUNCT = re.compile(r"([!-/:-@\[-`{-~])")


def md_cell(value: Any, max_chars: int | None = None) -> str:
    """``value`` as literal text for one markdown table cell (one line, optionally cut to ``max_chars``)."""
    text = "" if value is None else str(value)
    if max_chars is not None and len(text) > max_chars:
        text = text[: max(max_chars - 3, 0)] + "..."
    text = " ".join(text.splitlines()) if ("\n" in text or "\r" in text) else text
    return _PUNCT.sub(r"\\\1", text)
