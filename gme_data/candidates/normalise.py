"""Text normalisation for candidates: Unicode NFC, collapsed whitespace, stripped ends."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import Any

_WHITESPACE = re.compile(r"\s+")


def normalise_text(value: Any) -> str | None:
    """NFC-normalised text with runs of whitespace collapsed to one space; empty -> None."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    text = _WHITESPACE.sub(" ", unicodedata.normalize("NFC", str(value))).strip()
    return text or None


def text_key(text: str) -> str:
    """Hash of the normalised, case-folded text: equal keys mean exact duplicates."""
    return hashlib.sha1(text.casefold().encode("utf-8")).hexdigest()
