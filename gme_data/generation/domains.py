"""The 15 GME domains and the generic references ("this plant") used to rewrite entity queries."""

from __future__ import annotations

import re

from gme_data.generation.text import tokens

#: Generic reference per domain: how a fused query refers to the entity it shows.
GENERIC_REFERENCE: dict[str, str] = {
    "animals": "this animal",
    "plants": "this plant",
    "food & drink": "this dish",
    "architecture & landmarks": "this landmark",
    "vehicles & transport": "this vehicle",
    "people": "this person",
    "sports": "this sport",
    "arts & culture": "this artwork",
    "science & technology": "this technology",
    "geography & nature": "this place",
    "history & events": "this event",
    "music & entertainment": "this work",
    "everyday objects": "this object",
    "health & medicine": "this condition",
    "business & economy": "this company",
}
DOMAINS: tuple[str, ...] = tuple(GENERIC_REFERENCE)
FALLBACK_REFERENCE = "this subject"

#: Finer generic nouns per domain, chosen when the paragraph's defining phrase names one
#: ("... is a suspension bridge ..." -> "this bridge"). Keyword -> category noun.
REFINEMENTS: dict[str, dict[str, str]] = {
    "animals": {w: w for w in ("bird", "fish", "insect", "mammal", "reptile", "snake", "frog", "spider",
                               "butterfly", "beetle", "shark", "whale", "dog", "cat", "lizard", "turtle")}
    | {"breed": "breed", "owl": "bird", "eagle": "bird", "parrot": "bird", "moth": "insect"},
    "plants": {w: w for w in ("tree", "flower", "shrub", "fern", "grass", "herb", "vine", "cactus", "moss",
                              "orchid", "conifer", "palm")} | {"mushroom": "fungus", "fungus": "fungus"},
    "food & drink": {w: w for w in ("fruit", "drink", "cheese", "bread", "soup", "dessert", "cake", "sauce",
                                    "pastry", "beverage", "cocktail", "wine", "beer", "tea", "coffee",
                                    "vegetable", "sandwich", "noodle", "spice", "sausage", "salad")},
    "architecture & landmarks": {w: w for w in ("bridge", "tower", "castle", "church", "cathedral", "temple",
                                                "palace", "mosque", "stadium", "museum", "skyscraper",
                                                "monument", "statue", "lighthouse", "fortress", "house",
                                                "building", "basilica", "mausoleum", "dam", "station")},
    "vehicles & transport": {w: w for w in ("car", "aircraft", "airliner", "ship", "locomotive", "train",
                                            "motorcycle", "bicycle", "truck", "bus", "boat", "helicopter",
                                            "tram", "submarine", "tank", "automobile", "sedan", "airport")},
    "people": {},
    "sports": {"athlete": "athlete", "player": "player", "footballer": "player", "cricketer": "player",
               "team": "team", "club": "club", "stadium": "stadium", "tournament": "tournament",
               "championship": "tournament", "cup": "tournament", "race": "race", "league": "league"},
    "arts & culture": {w: w for w in ("painting", "sculpture", "statue", "mural", "fresco", "portrait",
                                      "tapestry", "mosaic", "manuscript", "festival", "dance", "costume")},
    "science & technology": {w: w for w in ("telescope", "computer", "satellite", "robot", "microscope",
                                            "engine", "spacecraft", "rocket", "device", "processor",
                                            "smartphone", "camera", "reactor", "instrument", "machine")},
    "geography & nature": {w: w for w in ("mountain", "river", "lake", "island", "volcano", "waterfall",
                                          "desert", "glacier", "city", "canyon", "forest", "bay", "valley",
                                          "cave", "reef", "peninsula", "beach", "park", "town", "village")},
    "history & events": {w: w for w in ("battle", "war", "treaty", "revolution", "siege", "expedition",
                                        "uprising", "empire", "dynasty", "ceremony", "disaster")},
    "music & entertainment": {"instrument": "instrument", "guitar": "instrument", "violin": "instrument",
                              "piano": "instrument", "band": "band", "singer": "singer", "film": "film",
                              "album": "album", "opera": "opera", "series": "series", "game": "game"},
    "everyday objects": {w: w for w in ("tool", "chair", "table", "utensil", "container", "knife", "lamp",
                                        "clock", "toy", "garment", "shoe", "bag", "appliance", "umbrella")},
    "health & medicine": {"disease": "disease", "disorder": "disorder", "infection": "infection",
                          "medication": "medication", "drug": "medication", "vaccine": "vaccine",
                          "organ": "organ", "bone": "bone", "muscle": "muscle", "syndrome": "condition",
                          "procedure": "procedure"},
    "business & economy": {"company": "company", "corporation": "company", "manufacturer": "company",
                           "retailer": "company", "bank": "bank", "brand": "brand", "currency": "currency",
                           "exchange": "exchange", "conglomerate": "company", "airline": "airline"},
}

#: Words that may appear in a rewritten query even if they are part of the entity's name
#: ("Golden Gate Bridge" -> "this bridge"): the generic category nouns.
GENERIC_NOUNS: frozenset[str] = frozenset(
    {ref.split()[-1] for ref in GENERIC_REFERENCE.values()}
    | {FALLBACK_REFERENCE.split()[-1]}
    | {noun for table in REFINEMENTS.values() for noun in table.values()}
    | {kw for table in REFINEMENTS.values() for kw in table}
)

_ALIASES = {"animal": "animals", "plant": "plants", "food": "food & drink", "architecture": "architecture & landmarks",
            "landmarks": "architecture & landmarks", "vehicles": "vehicles & transport",
            "transport": "vehicles & transport", "person": "people", "sport": "sports", "arts": "arts & culture",
            "art": "arts & culture", "science": "science & technology", "technology": "science & technology",
            "geography": "geography & nature", "nature": "geography & nature", "history": "history & events",
            "music": "music & entertainment", "entertainment": "music & entertainment",
            "objects": "everyday objects", "health": "health & medicine", "medicine": "health & medicine",
            "business": "business & economy", "economy": "business & economy"}


def canonical_domain(domain: str | None) -> str | None:
    """Map spellings like ``"food_and_drink"`` or ``"Food & Drink"`` to the canonical domain, or None."""
    if not domain:
        return None
    key = re.sub(r"[_\s]+", " ", str(domain).strip().lower()).replace(" and ", " & ")
    if key in GENERIC_REFERENCE:
        return key
    for word in tokens(key):
        if word in _ALIASES:
            return _ALIASES[word]
    return None


def generic_reference(domain: str | None, defining_phrase: str = "", entity: str = "") -> str:
    """``"this <noun>"`` for an entity of ``domain``.

    A category noun in ``defining_phrase`` ("a suspension bridge") or in a multi-word ``entity``
    name ("Battle of Hastings") refines the domain's default; a one-word entity never names its own
    category ("Umbrella" stays "this object").
    """
    canon = canonical_domain(domain)
    if canon is None:
        return FALLBACK_REFERENCE
    table = REFINEMENTS.get(canon, {})
    entity_tokens = tokens(entity)
    own = set(entity_tokens) if len(entity_tokens) == 1 else set()
    for word in tokens(defining_phrase) + (entity_tokens if len(entity_tokens) > 1 else []):
        singular = word[:-1] if word.endswith("s") and word[:-1] in table else word
        if singular in table and singular not in own and word not in own:
            return f"this {table[singular]}"
    return GENERIC_REFERENCE[canon]
