"""Fixtures for the generation tests: realistic candidates, real images, a loopback LLM server."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from PIL import Image, ImageDraw

from tests.support.openai_server import OpenAICompatServer, request_text

#: (title, domain, paragraph): Wikipedia-style paragraphs, one per GME domain.
PARAGRAPHS: list[tuple[str, str, str]] = [
    ("Eiffel Tower", "architecture & landmarks",
     "The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, France. It is named after "
     "the engineer Gustave Eiffel, whose company designed and built the tower. The tower is 330 metres tall."),
    ("Koala", "animals",
     "The koala (Phascolarctos cinereus) is an arboreal herbivorous marsupial native to Australia. Koalas are "
     "found in coastal areas of the mainland's eastern and southern regions. The koala weighs between 4 and 15 kg."),
    ("Monstera deliciosa", "plants",
     "Monstera deliciosa, the Swiss cheese plant, is a species of flowering plant native to tropical forests of "
     "southern Mexico, south to Panama. It has become a mildly invasive species in Hawaii."),
    ("Sushi", "food & drink",
     "Sushi is a Japanese dish of prepared vinegared rice, usually with some sugar and salt, plus a variety of "
     "ingredients, such as seafood, often raw, and vegetables."),
    ("Ford Model T", "vehicles & transport",
     "The Ford Model T is an automobile that was produced by the Ford Motor Company from October 1, 1908, to "
     "May 26, 1927. It is generally regarded as the first mass-affordable automobile."),
    ("Marie Curie", "people",
     "Marie Salomea Sklodowska-Curie was a Polish and naturalised-French physicist and chemist who conducted "
     "pioneering research on radioactivity. She was born in Warsaw, in what was then the Kingdom of Poland."),
    ("Wimbledon Championships", "sports",
     "The Wimbledon Championships is the oldest tennis tournament in the world and is widely regarded as the "
     "most prestigious. It has been held at the All England Club in Wimbledon, London, since 1877."),
    ("Mona Lisa", "arts & culture",
     "The Mona Lisa is a half-length portrait painting by Italian artist Leonardo da Vinci. The painting is "
     "located in the Louvre in Paris."),
    ("Hubble Space Telescope", "science & technology",
     "The Hubble Space Telescope is a space telescope that was launched into low Earth orbit in 1990. It was "
     "built by the United States space agency NASA with contributions from the European Space Agency."),
    ("Mount Kilimanjaro", "geography & nature",
     "Mount Kilimanjaro is a dormant volcano in Tanzania. It is the highest mountain in Africa, about 5,895 "
     "metres above sea level."),
    ("Battle of Hastings", "history & events",
     "The Battle of Hastings was fought on 14 October 1066 between the Norman-French army of William, the Duke "
     "of Normandy, and an English army under the Anglo-Saxon King Harold Godwinson."),
    ("Stradivarius", "music & entertainment",
     "A Stradivarius is one of the violins, violas, cellos and other string instruments built by members of "
     "the Italian family Stradivari, particularly Antonio Stradivari, during the 17th and 18th centuries."),
    ("Umbrella", "everyday objects",
     "An umbrella is a folding canopy supported by wooden or metal ribs that is usually mounted on a wooden, "
     "metal, or plastic pole. It is designed to protect a person against rain or sunlight."),
    ("Aspirin", "health & medicine",
     "Aspirin, also known as acetylsalicylic acid, is a nonsteroidal anti-inflammatory drug used to reduce "
     "pain, fever, and inflammation. It was first synthesized by Felix Hoffmann at Bayer in 1897."),
    ("Toyota", "business & economy",
     "Toyota Motor Corporation is a Japanese multinational automotive manufacturer headquartered in Toyota "
     "City, Aichi, Japan. It was founded by Kiichiro Toyoda and incorporated on August 28, 1937."),
]


def make_image(path: Path, color: tuple[int, int, int], size: tuple[int, int] = (320, 240)) -> str:
    """A real PNG with a shape on it."""
    img = Image.new("RGB", size, color)
    ImageDraw.Draw(img).ellipse((40, 40, size[0] - 40, size[1] - 40), fill=(255 - color[0], 200, 90))
    img.save(path, format="PNG")
    return str(path)


def candidates_frame(tmp_path: Path, n: int | None = None, with_images: bool = True) -> pd.DataFrame:
    """A candidates table (the contract's columns); every other candidate has an image."""
    rows = []
    for i, (title, domain, text) in enumerate(PARAGRAPHS[:n]):
        image = None
        if with_images and i % 2 == 0:
            image = make_image(tmp_path / f"cand{i}.png", (20 * i % 255, 90, 160))
        rows.append({"id": f"cand-{i:02d}", "title": title, "text": text, "image": image, "source": "wiki-sample",
                     "shard": "000", "domain": domain, "domain_confidence": 0.9,
                     "url": f"https://en.wikipedia.org/wiki/{title.replace(' ', '_')}"})
    return pd.DataFrame(rows)


def _field(text: str, name: str) -> str:
    m = re.search(rf"^{name}: (.*)$", text, flags=re.MULTILINE)
    return m.group(1).strip() if m else ""


def paragraph_responder(body: dict[str, Any]) -> str:
    """Answers the three generation prompts from the request's own title and paragraph."""
    text = request_text(body)
    title = _field(text, "Title")
    paragraph = text.split("Paragraph:\n", 1)[-1].split("\n\n", 1)[0]
    first_sentence = paragraph.split(". ")[0].rstrip(".")
    if '"rewritten_query"' in text:
        query = _field(text, "Question")
        return json.dumps({"entity": title, "category": "subject",
                           "rewritten_query": query.replace(title, "this subject")})
    if "caption-style" in text:
        return json.dumps({"query": f"A photograph showing {title} in its typical setting"})
    return json.dumps({"query": f"What does the encyclopedia say about {title} here?",
                       "answer": first_sentence[:120]})


@pytest.fixture
def server() -> Iterator[OpenAICompatServer]:
    with OpenAICompatServer(responder=paragraph_responder, slow_seconds=3.0) as srv:
        yield srv
