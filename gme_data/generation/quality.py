"""Library-side quality gates for generated queries; each failing row gets one drop reason."""

from __future__ import annotations

from typing import Any

from gme_data.generation.config import STYLES, GenerationConfig
from gme_data.generation.domains import GENERIC_NOUNS
from gme_data.generation.text import STOPWORDS, language_matches, normalized, tokens

SCHEMA_MISMATCH = "schema_mismatch"
EMPTY_QUERY = "empty_query"
EMPTY_ENTITY = "empty_entity"
QUERY_EQUALS_ANSWER = "query_equals_answer"
TOO_SHORT = "too_short"
TOO_LONG = "too_long"
ENTITY_LEAK = "entity_leak"
WRONG_LANGUAGE = "wrong_language"

_TEXT_FIELDS = ("query", "answer", "entity", "rewritten_query")


def distinctive_tokens(entity: str | None) -> set[str]:
    """Entity tokens that give it away: not stopwords, not generic category nouns ("bridge").

    An entity made only of generic nouns ("Umbrella") keeps them: its name is the give-away.
    """
    stop = STOPWORDS["en"]
    content = {t for t in tokens(entity) if len(t) >= 2 and t not in stop}
    return (content - GENERIC_NOUNS) or content


def leaked_tokens(entity: str | None, text: str | None) -> set[str]:
    """Distinctive entity tokens found in ``text`` (token-level, case-insensitive)."""
    return distinctive_tokens(entity) & set(tokens(text))


def check_query(row: dict[str, Any], config: GenerationConfig) -> tuple[str | None, str]:
    """(drop reason or None, detail) for one generated row with keys style/query/answer/entity/rewritten_query."""
    style = row.get("style")
    if style not in STYLES:
        return SCHEMA_MISMATCH, f"style {style!r} not in {STYLES}"
    for name in _TEXT_FIELDS:
        value = row.get(name)
        if value is not None and not isinstance(value, str):
            return SCHEMA_MISMATCH, f"{name} must be a string, got {type(value).__name__}"
    query = (row.get("query") or "").strip()
    final = (row.get("rewritten_query") or "").strip() if style == "fused" else query
    if not query or not final:
        return EMPTY_QUERY, "rewritten_query is empty" if query else "query is empty"
    answer = normalized(row.get("answer"))
    if answer and answer in (normalized(query), normalized(final)):
        return QUERY_EQUALS_ANSWER, f"answer {row.get('answer')!r} repeats the query"
    for text in dict.fromkeys((query, final)):
        if not language_matches(text, config.expected_language):
            return WRONG_LANGUAGE, f"not {config.expected_language}: {text!r}"
    for text in dict.fromkeys((query, final)):
        n_words = len(text.split())
        if n_words < config.min_query_words:
            return TOO_SHORT, f"{n_words} words < {config.min_query_words}: {text!r}"
        if n_words > config.max_query_words or len(text) > config.max_query_chars:
            return TOO_LONG, f"{n_words} words / {len(text)} chars over the limit: {text[:80]!r}..."
    if style == "fused":
        if not (row.get("entity") or "").strip():
            return EMPTY_ENTITY, "fused query without an entity"
        leaked = leaked_tokens(row.get("entity"), final)
        if leaked:
            return ENTITY_LEAK, f"rewritten query names the entity ({', '.join(sorted(leaked))}): {final!r}"
    return None, ""
