"""Synthetic corpora for the synthesis benchmark: N distinct paragraphs, about a third with a distinct image.

Paragraphs are composed per GME domain from a varied vocabulary (a made-up entity name, three
sentences drawn from domain templates and word lists), so the exact-text dedup keeps them and the
zero-shot classifier finds a domain for most. Images are drawn with PIL: a random two-colour
gradient, 3-7 random shapes and, for one image in four, a few printed lines of words (so OCR has
something to read); PNG and JPEG alternate. The random layouts give distinct perceptual hashes, so
the pHash dedup keeps them (not perturbed copies of the bundled sample, which dedup collapses).

The corpus is one Wikipedia-style JSONL manifest (one article per paragraph, absolute image paths).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from PIL import Image, ImageDraw

#: domain -> (nouns, verbs/facts, adjectives); enough variety that no two paragraphs coincide
VOCAB: dict[str, tuple[list[str], list[str], list[str]]] = {
    "animals": (["species", "predator", "herd", "nest", "burrow", "wildlife", "mammal", "bird", "insect", "colony",
                 "fur", "feathers", "prey", "habitat", "zoo"],
                ["feeds on small insects", "breeds in early spring", "migrates across the savanna",
                 "hunts at night", "lives in large family groups", "builds nests in hollow trees",
                 "hibernates through the winter", "raises its young in a den"],
                ["wild", "nocturnal", "endangered", "carnivorous", "social", "migratory", "agile"]),
    "plants": (["tree", "flower", "leaf", "seed", "root", "moss", "fern", "shrub", "blossom", "petal", "orchid",
                "grass", "bark", "stem", "pollen"],
               ["grows in shaded forests", "flowers in late summer", "spreads its seeds by wind",
                "needs moist soil", "is pollinated by bees", "sheds its leaves in autumn",
                "is cultivated in gardens", "climbs along walls"],
               ["perennial", "evergreen", "flowering", "deciduous", "fragrant", "tropical", "hardy"]),
    "food_drink": (["dish", "recipe", "sauce", "bread", "cheese", "soup", "dessert", "beverage", "tea", "coffee",
                    "spice", "pastry", "noodle", "stew", "cuisine"],
                   ["is baked in a clay oven", "is served with rice", "is brewed from roasted beans",
                    "is flavoured with garlic and herbs", "is eaten at festive meals", "is simmered for hours",
                    "is sold by street vendors", "is made from fermented milk"],
                   ["spicy", "sweet", "savory", "traditional", "crispy", "creamy", "regional"]),
    "architecture_landmarks": (["tower", "cathedral", "bridge", "palace", "dome", "monument", "castle", "temple",
                                "skyscraper", "arch", "facade", "fortress", "landmark", "building", "masonry"],
                               ["was built of carved stone", "rises above the old town", "was designed by a famous "
                                "architect", "has a gilded dome", "attracts millions of visitors",
                                "was restored after a fire", "overlooks the harbour", "is a protected landmark"],
                               ["gothic", "baroque", "medieval", "historic", "monumental", "ornate", "modernist"]),
    "vehicles_transport": (["locomotive", "car", "truck", "bicycle", "ship", "aircraft", "tram", "ferry",
                            "motorcycle", "bus", "railway", "engine", "cargo", "helicopter", "sedan"],
                           ["carries passengers between cities", "runs on diesel fuel", "has four wheels and a "
                            "steel frame", "hauls cargo across the sea", "reaches high speeds on rails",
                            "was produced by a car maker", "flies long-distance routes", "is powered by an engine"],
                           ["electric", "heavy", "fast", "commercial", "vintage", "articulated", "amphibious"]),
    "people": (["painter", "scientist", "politician", "writer", "explorer", "inventor", "queen", "general",
                "philosopher", "biography", "childhood", "career", "family", "poet", "statesman"],
               ["was born in a small village", "studied law at the university", "married in her twenties",
                "died in exile", "founded a famous company", "wrote several novels", "led the nation for a decade",
                "was awarded many honours"],
               ["famous", "influential", "celebrated", "controversial", "renowned", "young", "elderly"]),
    "sports": (["tournament", "athlete", "team", "match", "league", "stadium", "championship", "goal", "race",
                "coach", "referee", "medal", "season", "player", "score"],
               ["won the national championship", "scored in the final match", "trains every morning",
                "plays in the top league", "broke the world record", "competed at the olympic games",
                "coached the winning team", "finished the marathon first"],
               ["professional", "olympic", "competitive", "amateur", "undefeated", "athletic", "rival"]),
    "arts_culture": (["painting", "sculpture", "gallery", "museum", "artist", "canvas", "portrait", "exhibition",
                      "photograph", "mural", "artwork", "dance", "ballet", "fresco", "design"],
                     ["hangs in a national gallery", "was painted in oil on canvas", "depicts a quiet landscape",
                      "was carved from marble", "was shown at a major exhibition", "uses bold colours",
                      "influenced later artists", "was restored by curators"],
                     ["abstract", "impressionist", "classical", "contemporary", "surreal", "decorative", "vivid"]),
    "science_technology": (["telescope", "computer", "algorithm", "software", "processor", "satellite", "laser",
                            "physics", "chemistry", "robot", "circuit", "network", "experiment", "theory",
                            "microscope"],
                           ["processes data in parallel", "orbits the earth", "measures distant galaxies",
                            "runs on silicon chips", "recognises speech and images", "was tested in a laboratory",
                            "transmits signals over fibre", "simulates complex molecules"],
                           ["digital", "quantum", "scientific", "electronic", "automated", "experimental", "optical"]),
    "geography_nature": (["mountain", "river", "desert", "forest", "ocean", "glacier", "valley", "volcano", "lake",
                          "canyon", "island", "plateau", "coast", "delta", "terrain"],
                         ["rises above the plains", "flows into the sea", "is covered by ice all year",
                          "receives little rain", "was carved by erosion", "borders three countries",
                          "has a mild climate", "is formed of volcanic rock"],
                         ["rugged", "arid", "remote", "vast", "frozen", "fertile", "coastal"]),
    "history_events": (["war", "revolution", "empire", "battle", "treaty", "dynasty", "uprising", "kingdom",
                        "siege", "invasion", "rebellion", "coronation", "republic", "crusade", "armistice"],
                       ["ended with a peace treaty", "began in the spring of that year", "toppled the old regime",
                        "lasted for seven years", "was fought near the river", "changed the borders of europe",
                        "is remembered every year", "marked the fall of the empire"],
                       ["ancient", "bloody", "decisive", "historic", "medieval", "colonial", "civil"]),
    "music_entertainment": (["album", "band", "song", "concert", "opera", "film", "guitar", "symphony", "singer",
                             "video game", "orchestra", "movie", "piano", "soundtrack", "musical"],
                            ["topped the music charts", "was released on vinyl", "toured across the country",
                             "won an award for best film", "was performed by an orchestra", "sold millions of copies",
                             "features a famous soundtrack", "was played on the radio"],
                            ["popular", "acoustic", "animated", "classical", "electronic", "blockbuster", "lyrical"]),
    "everyday_objects": (["kettle", "chair", "umbrella", "lamp", "scissors", "backpack", "spoon", "mirror", "clock",
                          "pencil", "towel", "bucket", "wallet", "hammer", "toothbrush"],
                         ["is used in most households", "is made of plastic and steel", "sits on the kitchen table",
                          "is carried in a pocket", "is sold in hardware shops", "folds for easy storage",
                          "has a wooden handle", "is cleaned after each use"],
                         ["handy", "portable", "cheap", "durable", "foldable", "household", "practical"]),
}
_SYLLABLES = ["ka", "lo", "mir", "ten", "sa", "vor", "qui", "dal", "ne", "ru", "bex", "tor", "fi", "gan", "ph",
              "ola", "zen", "mar", "ish", "pel", "cor", "vin", "ul", "tas"]
_TEMPLATES = [
    "The {name} is a {adj} {noun} that {fact}.",
    "Like many a {adj} {noun}, the {name} {fact}.",
    "Records note that the {name} {fact}, unlike any other {noun}.",
    "Observers describe the {name} as {adj}; it {fact}.",
    "Its {noun} {fact}, and the {adj} {noun2} nearby is well known.",
    "In the region the {name} {fact}.",
    "A {adj} {noun2} is often compared with the {name}, which {fact}.",
]


def _name(rng: random.Random) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))).capitalize()


def paragraph(rng: random.Random, domain: str) -> tuple[str, str]:
    """(title, text) of one paragraph about a made-up entity of ``domain``."""
    nouns, facts, adjs = VOCAB[domain]
    name = _name(rng) + " " + _name(rng)
    sentences = []
    for template in rng.sample(_TEMPLATES, 3):
        sentences.append(template.format(name=name, adj=rng.choice(adjs), noun=rng.choice(nouns),
                                         noun2=rng.choice(nouns), fact=rng.choice(facts)))
    text = " ".join(s[0].upper() + s[1:] for s in sentences)
    return name, text


def draw_image(rng: random.Random, words: list[str] | None = None, size: tuple[int, int] = (256, 192)) -> Image.Image:
    """A random gradient with random shapes; ``words`` are printed as three lines of text when given."""
    w, h = size
    c1 = [rng.randrange(256) for _ in range(3)]
    c2 = [rng.randrange(256) for _ in range(3)]
    horizontal = rng.random() < 0.5
    img = Image.new("RGB", size)
    draw = ImageDraw.Draw(img)
    span = w if horizontal else h
    for i in range(span):
        t = i / max(1, span - 1)
        colour = tuple(int(a + (b - a) * t) for a, b in zip(c1, c2, strict=True))
        draw.line([(i, 0), (i, h)] if horizontal else [(0, i), (w, i)], fill=colour)
    for _ in range(rng.randint(3, 7)):
        x0, y0 = rng.randrange(w), rng.randrange(h)
        x1, y1 = min(w, x0 + rng.randint(20, w // 2)), min(h, y0 + rng.randint(20, h // 2))
        fill = tuple(rng.randrange(256) for _ in range(3))
        kind = rng.choice(("rect", "ellipse", "poly"))
        if kind == "rect":
            draw.rectangle([x0, y0, x1, y1], fill=fill)
        elif kind == "ellipse":
            draw.ellipse([x0, y0, x1, y1], fill=fill)
        else:
            draw.polygon([(x0, y0), (x1, y0 + (y1 - y0) // 3), (x0 + (x1 - x0) // 2, y1)], fill=fill)
    if words:
        draw.rectangle([8, h // 2 - 8, w - 8, h - 8], fill=(255, 255, 255))
        for line in range(3):
            draw.text((14, h // 2 + line * 18), " ".join(words[line * 3:line * 3 + 3]), fill=(0, 0, 0))
    return img


def write_corpus(n: int, out_dir: str | Path, seed: int = 0, image_every: int = 3,
                 text_image_every: int = 4) -> Path:
    """Write ``<out_dir>/bench_<n>.jsonl`` (n paragraphs) and its images; return the manifest path."""
    if n < 1:
        raise ValueError(f"corpus size must be >= 1, got {n}")
    out = Path(out_dir)
    images = out / f"bench_{n}_images"
    images.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    domains = list(VOCAB)
    seen: set[str] = set()
    lines = []
    n_images = 0
    for i in range(n):
        domain = domains[i % len(domains)]
        title, text = paragraph(rng, domain)
        while text in seen:
            title, text = paragraph(rng, domain)
        seen.add(text)
        para: dict = {"text": text, "images": []}
        if i % image_every == 0:
            words = None
            if n_images % text_image_every == 0:
                nouns, _, adjs = VOCAB[domain]
                words = [rng.choice(nouns + adjs).upper() for _ in range(9)]
            img = draw_image(rng, words)
            ext = "png" if n_images % 2 == 0 else "jpg"
            path = images / f"img_{i:06d}.{ext}"
            img.save(path, quality=90) if ext == "jpg" else img.save(path)
            para["images"] = [{"path": str(path.resolve()), "caption": f"{title} ({domain})"}]
            n_images += 1
        lines.append(json.dumps({"title": title, "url": f"https://example.org/bench/{i}", "domain": domain,
                                 "paragraphs": [para]}))
    manifest = out / f"bench_{n}.jsonl"
    tmp = out / f".bench_{n}.jsonl.part"
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(manifest)
    return manifest
