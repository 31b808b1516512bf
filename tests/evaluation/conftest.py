"""Fixtures: a small real embedder (bundled MiniLM text + colour-histogram images) and tiny datasets."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from gme_data.records import Item
from gme_data.retrieval.offline import MiniLMText

COLOURS = {"red": (220, 30, 30), "green": (30, 180, 40), "blue": (30, 60, 220), "yellow": (240, 220, 20),
           "black": (10, 10, 10), "orange": (250, 140, 0), "purple": (130, 40, 160), "gray": (128, 128, 128)}
BINS = 4


def _hist_bin(rgb: tuple[int, int, int]) -> int:
    r, g, b = (min(BINS - 1, c * BINS // 256) for c in rgb)
    return (r * BINS + g) * BINS + b


class HistMiniLMEmbedder:
    """Real, cheap embedder satisfying the protocol.

    Text: all-MiniLM-L6-v2 (bundled weights) -> 384 dims, plus a colour part where colour words in
    the text put mass on their RGB histogram bin. Images: a 4x4x4 RGB colour histogram
    (sqrt-scaled) in that colour part. Fused items: both. Counts calls per role.
    """

    name = "test-minilm-colourhist"
    dim = 384 + BINS**3
    modalities = ("text", "image", "fused")

    def __init__(self) -> None:
        self.model = MiniLMText(backend="onnx", threads=2)
        self.reset()

    def reset(self) -> None:
        self.calls: Counter[str] = Counter()
        self.items: Counter[str] = Counter()
        self.instructions: list[str | None] = []

    @property
    def cache_key(self) -> str:
        return f"{self.name}|bins={BINS}"

    def _image_vec(self, item: Item) -> np.ndarray:
        img = item.load_image().resize((32, 32))
        arr = np.asarray(img).reshape(-1, 3) // (256 // BINS)
        idx = (arr[:, 0] * BINS + arr[:, 1]) * BINS + arr[:, 2]
        h = np.bincount(idx, minlength=BINS**3).astype(np.float32)
        return np.sqrt(h / h.sum())

    def _text_colour(self, text: str) -> np.ndarray:
        v = np.zeros(BINS**3, np.float32)
        for word, rgb in COLOURS.items():
            if word in text.lower():
                v[_hist_bin(rgb)] += 1.0
        return v

    def encode(self, items, role: str = "query", instruction: str | None = None, batch_size: int = 16,
               show_progress: bool = False) -> np.ndarray:
        items = list(items)
        self.calls[role] += 1
        self.items[role] += len(items)
        self.instructions.append(instruction)
        texts = [it.text or "" for it in items]
        tv = self.model.encode(texts, batch_size=batch_size)
        out = np.zeros((len(items), self.dim), np.float32)
        for i, it in enumerate(items):
            if it.text is not None:
                out[i, :384] = tv[i]
                out[i, 384:] = self._text_colour(it.text)
            if it.image is not None:
                out[i, 384:] += 2.0 * self._image_vec(it)
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out


@pytest.fixture(scope="session")
def embedder_session() -> HistMiniLMEmbedder:
    return HistMiniLMEmbedder()


@pytest.fixture
def embedder(embedder_session: HistMiniLMEmbedder) -> HistMiniLMEmbedder:
    embedder_session.reset()
    return embedder_session


def write_layout(root: Path, queries: list[dict], corpus: list[dict], qrels: list[tuple], meta: dict | None = None,
                 header: str = "query-id\tcorpus-id\tscore") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (root / "corpus.jsonl").write_text("".join(json.dumps(c) + "\n" for c in corpus))
    (root / "qrels.tsv").write_text(header + "\n" + "".join("\t".join(map(str, r)) + "\n" for r in qrels))
    if meta is not None:
        (root / "dataset.json").write_text(json.dumps(meta))
    return root


def make_colour_t2i(root: Path) -> Path:
    """T->I: "a <colour> square" captions -> coloured-square images (two images per colour)."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    corpus, queries, qrels = [], [], []
    for name, rgb in COLOURS.items():
        for v in range(2):
            img = Image.new("RGB", (48, 48), "white")
            ImageDraw.Draw(img).rectangle((6 + v * 4, 6, 40, 40 - v * 4), fill=rgb)
            img.save(root / "images" / f"{name}{v}.png")
            corpus.append({"id": f"{name}{v}", "image": f"images/{name}{v}.png"})
            qrels.append((f"q-{name}", f"{name}{v}", 1))
        queries.append({"id": f"q-{name}", "text": f"a {name} square"})
    return write_layout(root, queries, corpus, qrels, {"name": "colours", "task": "T->I", "metric": "Recall@5"})


def make_text_t2t(root: Path) -> Path:
    """T->T: questions -> short passages, graded judgements."""
    passages = {
        "p1": ("Photosynthesis", "Plants convert sunlight, water and carbon dioxide into glucose and oxygen."),
        "p2": ("Volcanoes", "Magma rises through the crust and erupts as lava, ash and gas."),
        "p3": ("Tides", "The gravitational pull of the moon causes the ocean tides to rise and fall."),
        "p4": ("Bees", "Honey bees collect nectar from flowers and turn it into honey in the hive."),
        "p5": ("Rainbows", "Sunlight refracted and reflected in raindrops splits into a spectrum of colours."),
        "p6": ("Glaciers", "Slow-moving rivers of ice carve valleys as they flow downhill."),
    }
    corpus = [{"id": k, "title": t, "text": x} for k, (t, x) in passages.items()]
    queries = [
        {"id": "q1", "text": "how do plants make food from light"},
        {"id": "q2", "text": "what makes the sea level go up and down every day"},
        {"id": "q3", "text": "where does honey come from", "instruction": "Find the passage about insects."},
        {"id": "q4", "text": "why do we see colours in the sky after rain"},
        {"id": "q_unjudged", "text": "this query has no judgements"},
    ]
    qrels = [("q1", "p1", 2), ("q2", "p3", 2), ("q3", "p4", 2), ("q4", "p5", 2), ("q4", "p1", 1)]
    return write_layout(root, queries, corpus, qrels, {"name": "passages", "task": "T->T",
                                                        "instruction": "Given a question, find the passage."})
