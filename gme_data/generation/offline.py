"""A deterministic, rule-based query generator: the default backend, needing no endpoint.

For a Wikipedia-style paragraph it picks the entity (the title, else the subject of the first
sentence), finds a salient sentence that a rule can turn into a question about the entity
(creator, date, location, measurement, definition), takes the answer from that sentence, and
rewrites the question with the domain's generic reference ("this plant") for the fused style.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gme_data.generation.domains import generic_reference
from gme_data.generation.text import sentences, tokens

OFFLINE_VERSION = "offline-rules@v1"

_MONTH = r"(?:January|February|March|April|May|June|July|August|September|October|November|December)"
_DATE = rf"(?:(?:\d{{1,2}} )?{_MONTH} (?:\d{{1,2}}, )?)?(?:\d{{3,4}}(?: BC| AD| BCE| CE)?)"
_SUBJECT_WORDS = {"it", "he", "she", "they", "this", "these"}
_ANSWER_CUT = re.compile(r"\s*(?:[,;:(]|\s(?:which|where|who|that|while|with|and is|and was|making|although|"
                         r"because)\s|\sand (?:was |is )?\w+ed (?:on|in|by|at)\b)")
_TAIL_PREP = re.compile(rf"\s+(?:in|on|during|between|from|for|after|before|at|around)\s+(?:the\s+)?"
                        rf"(?:\d|{_MONTH}).*$")

_CREATOR_VERBS = ("designed|built|founded|written|painted|composed|invented|developed|discovered|directed|"
                  "created|established|sculpted|produced|manufactured|introduced|described|named|"
                  "engineered|commissioned|constructed|published|recorded|performed")
_DATE_VERBS = ("built|completed|founded|opened|established|born|constructed|released|published|discovered|"
               "invented|launched|introduced|painted|written|composed|signed|fought|formed|incorporated|"
               "inaugurated|consecrated|elected|crowned|approved|identified|first described|first flown|"
               "first brewed|first produced|first performed|first recorded|founded|created|developed|"
               "erected|unveiled|discontinued|abolished|first held")
_PLACE_VERBS = r"(?:located|situated|found|native|endemic|common|widespread|based|headquartered|grown|cultivated)"

_RULES: list[tuple[str, re.Pattern[str], str]] = [
    ("creator", re.compile(rf"^(?P<subj>.+?) (?P<aux>was|were|is|are) (?:\w+ )?(?P<verb>{_CREATOR_VERBS}) by "
                           r"(?P<ans>[^.;]+)", re.IGNORECASE), "Who {verb} {E}?"),
    ("date", re.compile(rf"^(?P<subj>.+?) (?P<aux>was|were) (?:\w+ )?(?P<verb>{_DATE_VERBS})\b[^.;]*? "
                        rf"(?:in|on) (?P<ans>{_DATE})\b", re.IGNORECASE), "When was {E} {verb}?"),
    ("birthplace", re.compile(r"^(?P<subj>.+?) (?P<aux>was|were) born (?:[^.;]*? )?in (?P<ans>[A-Z][^.;]+)"),
     "Where was {E} born?"),
    ("place", re.compile(rf"^(?P<subj>.+?) (?P<aux>is|are|was|were) (?:\w+ )?(?P<verb>{_PLACE_VERBS}) "
                         r"(?P<prep>in|to|on|throughout|across|at|near) (?P<ans>[^.;]+)", re.IGNORECASE),
     "Where {aux} {E} {verb}{prep_suffix}?"),
]

_MEASURES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\b(tall|height|high)\b", re.I), "How tall is {E}?"),
    (re.compile(r"\b(long|length)\b", re.I), "How long is {E}?"),
    (re.compile(r"\b(weigh|weighs|weight|mass)\b", re.I), "How much does {E} weigh?"),
    (re.compile(r"\b(population|inhabitants|residents)\b", re.I), "What is the population of {E}?"),
    (re.compile(r"\b(employees|employs|workforce)\b", re.I), "How many employees does {E} have?"),
    (re.compile(r"\b(capacity|seats|spectators)\b", re.I), "What is the capacity of {E}?"),
    (re.compile(r"\b(speed|km/h|mph)\b", re.I), "What is the top speed of {E}?"),
    (re.compile(r"\b(area|square)\b", re.I), "How large is {E}?"),
    (re.compile(r"\b(live|lives|lifespan)\b", re.I), "How long does {E} live?"),
    (re.compile(r"\b(revenue|sales|turnover)\b", re.I), "What is the revenue of {E}?"),
]
_QUANTITY = re.compile(
    r"(?P<ans>(?:(?:up to|about|around|approximately|over|more than|nearly|some|between) )?\$?\d[\d,.]*"
    r"(?: (?:and|to|-) \d[\d,.]*)?"
    r"(?: (?:million|billion|thousand))?\s?(?:metres|meters|m|feet|ft|kilometres|kilometers|km|miles|"
    r"kilograms|kg|grams|g|tonnes|tons|pounds|lb|centimetres|centimeters|cm|millimetres|mm|inches|in|years|"
    r"km/h|mph|hectares|square kilometres|square kilometers|square miles|km2|people|inhabitants|residents|"
    r"employees|seats|spectators|dollars|euros|US dollars)?)\b")
_DEFINITION = re.compile(r"^(?P<subj>.+?) (?P<aux>is|was|are|were) (?P<ans>(?:a|an|the|one of)\b[^;]+)")


@dataclass(frozen=True)
class OfflineQuery:
    """One rule-made question: ``query`` names the entity, ``rewritten_query`` uses ``generic``."""

    entity: str
    mention: str
    generic: str
    query: str
    answer: str
    rewritten_query: str
    rule: str


def extract_entity(title: str | None, text: str | None) -> str:
    """The paragraph's main entity: the title without a "(disambiguation)" part, else the first subject."""
    if title and title.strip():
        return re.sub(r"\s*\([^)]*\)\s*$", "", title.strip()) or title.strip()
    first = sentences(text or "")[:1]
    if not first:
        return ""
    m = _DEFINITION.match(first[0])
    if m and len(m.group("subj").split()) <= 6:
        return re.sub(r"^(?:the|a|an)\s+", "", m.group("subj"), flags=re.IGNORECASE).strip(" ,")
    caps = re.match(r"^((?:[A-Z][\w'-]*\s?){1,4})", first[0])
    return caps.group(1).strip() if caps else ""


def entity_mention(entity: str, text: str) -> str:
    """How the paragraph writes the entity, with its article: "the Eiffel Tower", "the koala", "Sushi"."""
    m = re.search(rf"\b(?:(?P<art>the|an|a)\s+)?(?P<name>{re.escape(entity)})\b", text, flags=re.IGNORECASE)
    if not m:
        return entity
    if m.group("art"):
        return f"{m.group('art').lower()} {m.group('name')}"
    return entity


def defining_phrase(text: str) -> str:
    """The predicate of the first "X is a ..." sentence ("a wrought-iron lattice tower ..."), or ""."""
    for sent in sentences(text)[:2]:
        m = _DEFINITION.match(sent)
        if m:
            return _trim_answer(m.group("ans"), max_words=16)
    return ""


def _definition_aux(text: str) -> str:
    """The verb of the defining sentence ("The Beatles were ..." -> "were")."""
    for sent in sentences(text)[:2]:
        m = _DEFINITION.match(sent)
        if m:
            return m.group("aux").lower()
    return "is"


def _about_entity(subject: str, entity: str) -> bool:
    """Is a sentence's subject the entity (or a pronoun / short "The tower" standing for it)?"""
    subj_tokens = tokens(subject)
    if not subj_tokens or len(subj_tokens) > 8:
        return False
    stems = {t.removesuffix("s") for t in tokens(entity)}
    if stems & {t.removesuffix("s") for t in subj_tokens} and subj_tokens[0] not in ("its", "his", "her", "their"):
        return True
    if subj_tokens[0] in _SUBJECT_WORDS and len(subj_tokens) <= 2:
        return True
    return subj_tokens[0] == "the" and len(subj_tokens) <= 3 and not re.search(r"\s[A-Z]", subject.strip())


def _trim_answer(answer: str, max_words: int = 12) -> str:
    cut = _ANSWER_CUT.search(answer)
    if cut and cut.start() > 0:
        answer = answer[: cut.start()]
    words = answer.strip().rstrip(".").split()
    return " ".join(words[:max_words]).strip(" ,;:")


def _fill(template: str, mention: str, **values: str) -> str:
    text = template.format(E=mention, **values).strip()
    text = re.sub(r"\s+", " ", text)
    return text[0].upper() + text[1:]


def _questions(sents: list[str], entity: str) -> list[tuple[str, str, dict[str, str]]]:
    """Candidate (rule, template, values) triples, most specific rules first."""
    found: list[tuple[str, str, dict[str, str]]] = []
    for name, pattern, template in _RULES:
        for sent in sents:
            m = pattern.match(sent)
            if not m or not _about_entity(m.group("subj"), entity):
                continue
            ans = m.group("ans") if name == "date" else _TAIL_PREP.sub("", _trim_answer(m.group("ans")))
            if not ans:
                continue
            aux = m.group("aux").lower()
            verb = (m.groupdict().get("verb") or "").lower()
            prep = (m.groupdict().get("prep") or "").lower()
            prep_suffix = " to" if verb == "native" and prep == "to" else ""
            found.append((name, template, {"ans": ans, "verb": verb, "aux": "is" if aux in ("is", "are") else
                                           "was", "prep_suffix": prep_suffix}))
    for sent in sents:
        subj = re.match(r"^(.+?) (?:is|are|was|were|has|had|can|reaches|grows|weighs|measures|stands|employs)\b",
                        sent)
        if not subj or not _about_entity(subj.group(1), entity):
            continue
        for cue, template in _MEASURES:
            if cue.search(sent):
                qty = [q for q in _QUANTITY.finditer(sent) if re.search(r"\d", q.group("ans"))]
                if qty:
                    found.append(("measure", template, {"ans": qty[0].group("ans").strip()}))
                break
    return found


def offline_doc2query(title: str | None, text: str, domain: str | None) -> OfflineQuery | None:
    """A question about the paragraph's entity, its answer, and the generic rewrite; None if no entity."""
    entity = extract_entity(title, text)
    if not entity or not text.strip():
        return None
    mention = entity_mention(entity, text)
    definition = defining_phrase(text)
    generic = generic_reference(domain, definition, entity)
    sents = sentences(text)
    options = _questions(sents, entity)
    if options:
        rule, template, values = options[0]
        answer = values.pop("ans")
    elif definition:
        rule, template, values, answer = "definition", "What {aux} {E}?", {"aux": _definition_aux(text)}, definition
    else:
        rule, template, values = "summary", "What {aux} {E} known for?", {"aux": "is"}
        answer = _trim_answer(sents[1] if len(sents) > 1 else sents[0], max_words=20)
    query = _fill(template, mention, **values)
    singular = {**values, "aux": {"are": "is", "were": "was"}.get(values.get("aux", ""), values.get("aux", ""))}
    rewritten = _fill(template, generic, **singular)
    return OfflineQuery(entity, mention, generic, query, answer, rewritten, rule)


def offline_caption_query(title: str | None, text: str | None, domain: str | None) -> str | None:
    """A caption-style image query: "A photo of the Eiffel Tower, a wrought-iron lattice tower ..."."""
    entity = extract_entity(title, text)
    if not entity:
        return None
    mention = entity_mention(entity, text or "")
    definition = defining_phrase(text or "")
    if definition:
        return f"A photo of {mention}, {_trim_answer(definition, max_words=14)}"
    generic = generic_reference(domain, "", entity).removeprefix("this ")
    if generic == "subject":
        return f"A photo of {mention}"
    return f"A photo of {mention}, {'an' if generic[0] in 'aeiou' else 'a'} {generic}"
