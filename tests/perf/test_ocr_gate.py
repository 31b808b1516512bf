"""The OCR gate on real images: text passes, smooth photos and plain shapes do not, no text image is lost."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np
import pytest

from gme_data.retrieval.ocr_gate import DEFAULT_GATE

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from synthesis_corpus import draw_image  # noqa: E402


@pytest.fixture(scope="module")
def detector():
    from rapidocr import RapidOCR

    return RapidOCR(params={"Global.log_level": "error", "Global.use_cls": False, "Global.use_rec": False,
                            "Det.limit_side_len": 480, "Det.limit_type": "max"})


def _boxes(detector, image) -> int:
    boxes = getattr(detector(np.asarray(image.convert("RGB"))), "boxes", None)
    return 0 if boxes is None else len(boxes)


def test_gate_recall_on_the_bundled_photos(detector):
    from gme_data.retrieval.demo_photos import photo_caption_pairs

    images, _ = photo_caption_pairs()
    with_text = [im for im in images if _boxes(detector, im) >= 3]  # what OCR would read (ocr_min_boxes 3)
    assert with_text, "the bundled photos include a text-rich page"
    assert all(DEFAULT_GATE.may_hold_text(im) for im in with_text)


def test_gate_on_drawn_images_with_and_without_text(detector):
    rng = random.Random(7)
    plain = [draw_image(rng) for _ in range(12)]
    texty = [draw_image(rng, [w.upper() for w in "the quick brown fox jumps over a lazy dog".split()])
             for _ in range(12)]
    assert all(DEFAULT_GATE.may_hold_text(im) for im in texty)
    assert all(_boxes(detector, im) >= 3 for im in texty)
    skipped = sum(not DEFAULT_GATE.may_hold_text(im) for im in plain)
    assert skipped >= 9  # most shape-only images never reach the detector
    assert all(_boxes(detector, im) < 3 for im in plain if not DEFAULT_GATE.may_hold_text(im))


def test_offline_embedder_skips_ocr_on_gated_images():
    from gme_data.retrieval.demo_photos import photo_caption_pairs
    from gme_data.retrieval.offline import OfflineEmbedder

    emb = OfflineEmbedder()
    images, _ = photo_caption_pairs()
    page = images[14]
    assert "segmentation" in emb.image_text(page).lower()
    plain = draw_image(random.Random(3))
    runs = emb.ocr_runs
    assert emb.image_text(plain) == "" and emb.ocr_runs == runs and emb.ocr_skipped >= 1


def test_ocr_beside_mobilenet_gives_the_vectors_of_one_after_the_other(monkeypatch):
    from gme_data.retrieval.demo_photos import photo_caption_pairs
    from gme_data.retrieval.offline import OfflineEmbedder

    images, _ = photo_caption_pairs()
    rng = random.Random(11)
    batch = [*images[12:16], draw_image(rng), draw_image(rng, ["PRINTED", "WORDS", "ON", "A", "CARD"]), images[14]]
    out = {}
    for threads in ("1", "2"):
        monkeypatch.setenv("GME_DATA_INFERENCE_THREADS", threads)
        emb = OfflineEmbedder()  # a fresh OCR memo: both runs read every image
        out[threads] = emb.image_vectors(batch)
        assert emb.ocr_runs >= 2  # the page and the card went to OCR
    np.testing.assert_array_equal(out["1"], out["2"])
