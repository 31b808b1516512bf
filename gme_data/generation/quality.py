"""Library-side quality gates for generated queries; each failing row gets one drop reason.

Beside form (empty, length, language, query == answer) the gates catch what small models do when
the paragraph is known: a query copied from the paragraph it retrieves (word 4-gram overlap; t2t and
fused), an answer the
paragraph does not support, and a fused query that names its entity or the page's title.
"""

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
COPIED_FROM_PASSAGE = "copied_from_passage"
ANSWER_UNSUPPORTED = "answer_unsupported"
COPIED_FROM_PROMPT = "copied_from_prompt_example"
COPY_NGRAM = 4

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


def copy_overlap(text: str | None, passage: str | None, n: int = COPY_NGRAM) -> float:
    """Share of ``text``'s word ``n``-grams that also occur in ``passage`` (0 for texts under ``n`` words)."""
    words, source = tokens(text), tokens(passage)
    if len(words) < n or len(source) < n:
        return 0.0
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    found = {tuple(source[i:i + n]) for i in range(len(source) - n + 1)}
    return sum(g in found for g in grams) / len(grams)


def prompt_copy(text: str | None, prompt_text: str, limit: float) -> tuple[str | None, str]:
    """``copied_from_prompt_example`` when ``text`` repeats the prompt's own words (a few-shot example)."""
    share = copy_overlap(text, prompt_text)
    if share > limit:
        return COPIED_FROM_PROMPT, f"{share:.0%} of its word {COPY_NGRAM}-grams are in the prompt: {text!r}"
    return None, ""


def answer_support(answer: str | None, passage: str | None) -> float:
    """Share of the answer's content words (no stopwords) found in the passage; 1.0 without content words."""
    content = [t for t in tokens(answer) if t not in STOPWORDS["en"]]
    if not content:
        return 1.0
    source = set(tokens(passage))
    return sum(t in source for t in content) / len(content)


def _passage_gates(row: dict[str, Any], config: GenerationConfig, query: str, final: str,
                   passage: str, title: str | None) -> tuple[str | None, str]:
    # t2i queries retrieve the image, so describing it in the paragraph's words is fine there
    for text in dict.fromkeys((query, final)) if row.get("style") != "t2i" else ():
        share = copy_overlap(text, passage)
        if share > config.max_copy_overlap:
            return COPIED_FROM_PASSAGE, (f"{share:.0%} of the query's word {COPY_NGRAM}-grams are in the paragraph "
                                         f"(limit {config.max_copy_overlap:.0%}): {text[:80]!r}")
    if row.get("style") != "t2i" and (row.get("answer") or "").strip():
        support = answer_support(row.get("answer"), passage)
        if support < config.min_answer_support:
            return ANSWER_UNSUPPORTED, (f"{support:.0%} of the answer's words are in the paragraph "
                                        f"(need {config.min_answer_support:.0%}): {row.get('answer')!r}")
    if row.get("style") == "fused" and title:
        words = tokens(final)
        generic_refs = {words[i + 1] for i, w in enumerate(words[:-1]) if w in ("this", "these", "that")}
        leaked = leaked_tokens(title, final) - generic_refs  # "this battle" for "Battle of Hastings" is fine
        if leaked:
            return ENTITY_LEAK, f"rewritten query names the page title ({', '.join(sorted(leaked))}): {final!r}"
    return None, ""


def check_query(row: dict[str, Any], config: GenerationConfig, passage: str | None = None,
                title: str | None = None) -> tuple[str | None, str]:
    """(drop reason or None, detail) for one generated row with keys style/query/answer/entity/rewritten_query.

    With the candidate's ``passage`` (and ``title``) the copy / answer-support / title-leak gates run too.
    """
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
    if passage:
        return _passage_gates(row, config, query, final, passage, title)
    return None, ""
