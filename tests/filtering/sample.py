"""A small realistic test sample: paragraphs (some with photos), an image pool, generated queries.

Photos come from scikit-image (bundled); one image is drawn with PIL. Paragraph texts and queries
were written for these tests. Planted bad rows are marked in ``PLANTED``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import skimage.data
from PIL import Image, ImageDraw

#: (candidate id, title, text, image name or None)
PARAGRAPHS: tuple[tuple[str, str, str, str | None], ...] = (
    ("c-cat", "Cat",
     "The domestic cat is a small carnivorous mammal and the only domesticated species of the family Felidae. "
     "A house cat typically sleeps twelve to sixteen hours a day and is most active at dawn and dusk.",
     "cat_crop"),
    ("c-coffee", "Coffee",
     "Coffee is a beverage brewed from roasted coffee beans, the seeds of berries from Coffea plants. The plant "
     "is native to tropical Africa, and coffee was first cultivated on the Arabian Peninsula in Yemen.",
     "coffee"),
    ("c-horse", "Horse",
     "The horse is a domesticated, one-toed, hoofed mammal. Horses were domesticated around 4000 BC on the "
     "Eurasian steppes and were used for transport, agriculture and warfare.",
     "horse"),
    ("c-camera", "Film camera",
     "A film camera records photographs on a strip of light-sensitive photographic film. Press photographers "
     "often mounted large film cameras on a tripod to keep them steady during long exposures.",
     "camera"),
    ("c-astronaut", "Astronaut",
     "An astronaut is a person trained to command, pilot or serve as a crew member of a spacecraft. Astronauts "
     "wear pressurised space suits during spacewalks outside the International Space Station.",
     "astronaut"),
    ("c-tabby", "Tabby cat",
     "A tabby is any domestic cat with a distinctive coat pattern of stripes, dots or swirling lines, usually "
     "with a mark resembling the letter M on its forehead.",
     "coffee_as_tabby"),  # planted: the paragraph's image is a cup of coffee (wrong image)
    ("c-violin", "Violin",
     "The violin is a wooden string instrument with four strings tuned in perfect fifths. It is usually played "
     "with a bow and is the smallest and highest-pitched instrument of the violin family.",
     None),
)

#: Text-only distractor paragraphs (the consistency filter ranks positives among all of these).
DISTRACTORS: tuple[tuple[str, str], ...] = (
    ("Photosynthesis", "Photosynthesis is the process by which green plants use sunlight, water and carbon dioxide "
                       "to produce glucose and oxygen."),
    ("Volcano", "A volcano is a rupture in the crust of a planet through which lava, ash and gases escape from a "
                "magma chamber below the surface."),
    ("Chess", "Chess is a board game for two players played on a checkered board of sixty-four squares; each "
              "player begins with sixteen pieces."),
    ("Jazz", "Jazz is a music genre that originated in the African-American communities of New Orleans in the "
             "late 19th and early 20th centuries."),
    ("Bread", "Bread is a staple food prepared from a dough of flour and water, usually leavened with yeast and "
              "baked in an oven."),
    ("Tea", "Tea is an aromatic beverage prepared by pouring hot water over cured leaves of the Camellia sinensis "
            "shrub, native to East Asia."),
    ("Eiffel Tower", "The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, completed "
                     "in 1889 for the World's Fair."),
    ("Glacier", "A glacier is a persistent body of dense ice that moves slowly under its own weight, forming "
                "where snow accumulation exceeds melting."),
    ("Bicycle", "A bicycle is a human-powered vehicle with two wheels attached to a frame, one behind the other, "
                "driven by pedals and a chain."),
    ("Honey bee", "Honey bees are social insects that live in large colonies, collect nectar from flowers and "
                  "store it as honey in wax combs."),
    ("Penicillin", "Penicillin was the first antibiotic, discovered by Alexander Fleming in 1928 when mould "
                   "killed bacteria in a Petri dish."),
    ("Marathon", "The marathon is a long-distance foot race over 42.195 kilometres, commemorating the run of "
                 "the messenger Pheidippides."),
    ("Great Wall", "The Great Wall of China is a series of fortifications built across northern China over many "
                   "centuries to protect against nomadic raids."),
    ("Transistor", "A transistor is a semiconductor device used to amplify or switch electrical signals; it is "
                   "the building block of modern electronics."),
    ("Sushi", "Sushi is a Japanese dish of vinegared rice combined with raw fish, seafood or vegetables."),
    ("Piano", "The piano is a keyboard instrument in which felt hammers strike strings when the keys are "
              "pressed."),
    ("Rainforest", "Tropical rainforests are dense forests near the equator with high rainfall and the greatest "
                   "diversity of plant and animal species on land."),
    ("Submarine", "A submarine is a watercraft capable of independent operation underwater, used by navies and "
                  "for scientific research."),
    ("Olympic Games", "The Olympic Games are an international multi-sport event held every four years, with "
                      "summer and winter editions."),
    ("Inflation", "Inflation is the rate at which the general level of prices for goods and services rises, "
                  "reducing purchasing power."),
    ("Moon", "The Moon is Earth's only natural satellite; its surface is covered in craters formed by asteroid "
             "and comet impacts."),
    ("Gothic architecture", "Gothic architecture flourished in Europe from the 12th century, with pointed "
                            "arches, ribbed vaults and flying buttresses."),
    ("Vaccination", "Vaccination is the administration of a vaccine to help the immune system develop "
                    "protection from a disease."),
    ("Football", "Association football is a team sport played between two teams of eleven players who try to "
                 "kick a ball into the opposing goal."),
)

#: Extra pool images (not attached to any paragraph).
POOL_EXTRA = ("cat_full", "coins", "brick", "moon", "drawn_shapes")


def _thumb(arr: np.ndarray, side: int = 256) -> Image.Image:
    img = Image.fromarray(arr).convert("RGB")
    img.thumbnail((side, side))
    return img


def _drawn_shapes() -> Image.Image:
    img = Image.new("RGB", (256, 256), "white")
    draw = ImageDraw.Draw(img)
    draw.ellipse((30, 30, 130, 130), fill="red")
    draw.rectangle((140, 120, 230, 220), fill="blue")
    return img


def make_images(root: Path) -> dict[str, str]:
    """Write the test images as files under ``root``; returns name -> path."""
    root.mkdir(parents=True, exist_ok=True)
    chelsea = _thumb(skimage.data.chelsea(), 300)
    images: dict[str, Image.Image] = {
        "cat_full": chelsea,
        "cat_crop": chelsea.crop((110, 10, 230, 130)).resize((224, 224)),
        "coffee": _thumb(skimage.data.coffee()),
        "horse": _thumb(skimage.data.horse().astype(np.uint8) * 255),
        "camera": _thumb(skimage.data.camera()),
        "astronaut": _thumb(skimage.data.astronaut()),
        "coins": _thumb(skimage.data.coins()),
        "brick": _thumb(skimage.data.brick()),
        "moon": _thumb(skimage.data.moon()),
        "drawn_shapes": _drawn_shapes(),
    }
    paths = {}
    for name, img in images.items():
        path = root / f"{name}.png"
        img.save(path)
        paths[name] = str(path)
    # the planted wrong image of the tabby paragraph: a copy of the coffee photo (same content)
    paths["coffee_as_tabby"] = paths["coffee"]
    return paths


def make_candidates(images: dict[str, str]) -> pd.DataFrame:
    rows = []
    for cid, title, text, image in PARAGRAPHS:
        rows.append({"id": cid, "title": title, "text": text, "image": images[image] if image else None,
                     "source": "test", "shard": "s0", "domain": "test", "domain_confidence": 1.0,
                     "url": f"https://example.org/{cid}"})
    for n, (title, text) in enumerate(DISTRACTORS):
        rows.append({"id": f"c-d{n:02d}", "title": title, "text": text, "image": None, "source": "test",
                     "shard": "s0", "domain": "test", "domain_confidence": 1.0, "url": None})
    return pd.DataFrame(rows)


def _gq(qid: str, cid: str, style: str, query: str, answer: str | None = None, entity: str | None = None,
        rewritten: str | None = None) -> dict:
    mods = {"t2t": ("text", "text"), "t2i": ("text", "image"), "fused": ("fused", "fused")}[style]
    return {"id": qid, "candidate_id": cid, "style": style, "query": query, "answer": answer, "entity": entity,
            "rewritten_query": rewritten, "prompt_version": "test@v1", "model": "hand-written",
            "query_modality": mods[0], "candidate_modality": mods[1]}


GOOD = {
    "q-cat-fused": _gq("q-cat-fused", "c-cat", "fused", "How many hours a day does a domestic cat sleep?",
                       "twelve to sixteen hours", "cat", "How many hours a day does this animal sleep?"),
    "q-coffee-fused": _gq("q-coffee-fused", "c-coffee", "fused", "Where was coffee first cultivated?",
                          "Yemen", "coffee", "Where was this drink first cultivated?"),
    "q-horse-fused": _gq("q-horse-fused", "c-horse", "fused", "When were horses domesticated?",
                         "around 4000 BC", "horse", "When were these animals first domesticated by people?"),
    "q-camera-t2t": _gq("q-camera-t2t", "c-camera", "t2t", "Why did press photographers put film cameras on a tripod?",
                        "to keep them steady"),
    "q-coffee-t2i": _gq("q-coffee-t2i", "c-coffee", "t2i", "a cup of coffee on a saucer"),
    "q-horse-t2t": _gq("q-horse-t2t", "c-horse", "t2t", "What were domesticated horses used for?",
                       "transport, agriculture and warfare"),
}

PLANTED = {
    # wrong image: caption of a cat, but the paragraph's image is a cup of coffee
    "q-tabby-t2i": (_gq("q-tabby-t2i", "c-tabby", "t2i", "a tabby cat looking to the side"),
                    "image_score_below_threshold"),
    # unrelated positive: a question about penicillin attached to the violin paragraph
    "q-violin-unrelated": (_gq("q-violin-unrelated", "c-violin", "t2t",
                               "Which antibiotic did Alexander Fleming discover in 1928?", "penicillin"),
                           "consistency_rank_above_k"),
    # exact duplicate of q-horse-t2t (same query, same positive)
    "q-horse-dup": (_gq("q-horse-dup", "c-horse", "t2t", "What were domesticated horses used for?",
                        "transport, agriculture and warfare"), "duplicate_pair"),
    # near duplicate of q-horse-t2t
    "q-horse-near": (_gq("q-horse-near", "c-horse", "t2t", "What were domesticated horses used for ?",
                         "transport"), "near_duplicate"),
    # answer leak: the answer is in the question
    "q-coffee-leak": (_gq("q-coffee-leak", "c-coffee", "t2t", "Is coffee brewed from roasted coffee beans?",
                          "roasted coffee beans"), "answer_leak"),
    # entity leak: the rewritten query still names the entity
    "q-cat-entity": (_gq("q-cat-entity", "c-cat", "fused", "At what time of day is a house cat most active?",
                         "at dawn and dusk", "cat", "At what time of day is this cat most active?"),
                     "entity_leak"),
}


def make_generated_queries() -> pd.DataFrame:
    rows = list(GOOD.values()) + [row for row, _ in PLANTED.values()]
    return pd.DataFrame(rows)


class CountingEmbedder:
    """Wraps a real embedder and records every ``encode`` call (role, number of items).

    ``name`` may be overridden to present the same model under another name (a different embedder
    as far as the pool's manifest is concerned)."""

    def __init__(self, inner: Any, name: str | None = None):
        self.inner = inner
        self.name = name or inner.name
        self.dim = inner.dim
        self.modalities = inner.modalities
        self.calls: list[tuple[str, int]] = []

    @property
    def settings(self) -> dict[str, Any]:
        return self.inner.settings

    def encode(self, items, role: str = "query", **kwargs: Any):
        items = list(items)
        self.calls.append((role, len(items)))
        return self.inner.encode(items, role=role, **kwargs)

    def embedded(self, role: str = "candidate") -> int:
        return sum(n for r, n in self.calls if r == role)
