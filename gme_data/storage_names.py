"""Names from data (partition keys, shard names) made safe for file paths, SQL text and markdown.

A partition key can come from an inbox file, a ``.source.json`` field, the Dagster UI or its API;
none of these may steer a write outside its folder or collide with a name the storage reserves.
"""

from __future__ import annotations

from urllib.parse import quote

#: Stems the storage derives from a partition's own file name (``_quarantine/<p>.superseded.parquet``).
RESERVED_SUFFIXES: tuple[str, ...] = (".superseded",)


def path_segment(name: str) -> str:
    """One path component for ``name``: percent-quoted (never a separator, ``.`` or ``..``).

    Letters, digits and ``_.-~`` are kept, so ordinary keys (``sample-wiki_03``, ``WebQA``) are their
    own file names; the mapping is one-to-one, and a key ending in a reserved suffix has that suffix's
    dot quoted, so partition ``x.superseded`` cannot take the place of ``x``'s superseded copy.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"a storage name must be a non-empty string, got {name!r}")
    quoted = quote(name, safe="")
    if quoted in (".", ".."):
        return quoted.replace(".", "%2E")
    for suffix in RESERVED_SUFFIXES:
        if quoted.endswith(suffix):
            quoted = quoted[: -len(suffix)] + "%2E" + suffix[1:]
    return quoted


def sql_literal(value: str) -> str:
    """``value`` as a single-quoted SQL string literal (quotes doubled)."""
    return "'" + str(value).replace("'", "''") + "'"


def code_fence(text: str, lang: str = "") -> str:
    """``text`` in a markdown code block whose fence is longer than any backtick run inside it."""
    longest, run = 0, 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{text}\n{fence}"
