"""Small text utilities: tokens, sentences, stopwords and a language heuristic."""

from __future__ import annotations

import re
import unicodedata

_TOKEN = re.compile(r"[^\W_]+(?:['’][^\W_]+)*", re.UNICODE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")
_ABBREV = re.compile(r"\b(?:[A-Z]|St|Mr|Mrs|Dr|Prof|Jr|Sr|Mt|No|U\.S|e\.g|i\.e|c|ca|approx|vs|etc)\.$")

STOPWORDS: dict[str, frozenset[str]] = {
    "en": frozenset("""a an the and or but of in on at to for from by with about as into over under after before
        between during is are was were be been being has have had do does did this that these those it its
        he she they them his her their who whom whose which what when where why how than then there here
        not no can could will would should may might must also such some any all each more most very
        i you we our your my me us one""".split()),
    "de": frozenset("""der die das und oder aber ein eine einer eines dem den des ist sind war waren wird
        werden wurde wurden von mit für auf im in zu zum zur nicht auch wie was wer wo wann warum welche
        welcher welches dieser diese dieses sich es er sie bei aus nach über unter""".split()),
    "fr": frozenset("""le la les un une des et ou mais de du au aux en dans sur pour par avec est sont était
        étaient être a ont qui que quoi quel quelle quels quelles où quand comment pourquoi ce cette ces
        il elle ils elles ne pas plus se son sa ses leur""".split()),
    "es": frozenset("""el la los las un una unos unas y o pero de del al en con por para es son era eran
        ser fue fueron que qué quién cuál cuándo dónde cómo por qué este esta estos estas se su sus no
        más lo le les""".split()),
}


def tokens(text: str | None) -> list[str]:
    """Lower-cased word tokens; a possessive ``'s`` is removed (``Eiffel's`` -> ``eiffel``)."""
    out = []
    for tok in _TOKEN.findall((text or "").lower()):
        tok = tok.replace("’", "'")
        if tok.endswith("'s"):
            tok = tok[:-2]
        if tok:
            out.append(tok)
    return out


def sentences(text: str) -> list[str]:
    """Split a paragraph into sentences (keeps common abbreviations like ``St.`` together)."""
    parts = _SENTENCE_END.split(re.sub(r"\s+", " ", text.strip()))
    merged: list[str] = []
    for part in parts:
        if merged and _ABBREV.search(merged[-1]):
            merged[-1] = f"{merged[-1]} {part}"
        else:
            merged.append(part)
    return [s.strip() for s in merged if s.strip()]


def normalized(text: str | None) -> str:
    """Tokens joined by single spaces: for comparing texts regardless of case and punctuation."""
    return " ".join(tokens(text))


def _latin_share(text: str) -> float:
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return 0.0
    latin = sum(1 for ch in letters if "LATIN" in unicodedata.name(ch, ""))
    return latin / len(letters)


def language_matches(text: str, expected: str) -> bool:
    """Heuristic check that ``text`` is in ``expected`` ("en", "de", "fr", "es"; "any" accepts all).

    The text must be written mostly in Latin script, and for texts of three or more words the
    expected language's stopwords must be at least as frequent as any other known language's.
    """
    if expected == "any":
        return True
    if _latin_share(text) < 0.9:
        return False
    words = tokens(text)
    if len(words) < 3:
        return True
    hits = {lang: sum(w in stops for w in words) for lang, stops in STOPWORDS.items()}
    return hits[expected] > 0 and hits[expected] >= max(hits.values())
