"""The OCR gate on real images: text passes, smooth photos and plain shapes do not, no text image is lost."""

from __future__ import annotations

import random
import sys
import threading
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


def test_two_threads_share_the_ocr_queue_and_give_the_same_vectors(monkeypatch):
    from gme_data.retrieval.offline import OfflineEmbedder

    rng = random.Random(5)
    words = "GRAND OPENING SALE TODAY ONLY FRESH BREAD AND COFFEE".split()
    batch = [draw_image(rng, rng.sample(words, 6)) for _ in range(10)] + [draw_image(rng) for _ in range(4)]
    out, readers = {}, {}
    for threads in ("1", "2"):
        monkeypatch.setenv("GME_DATA_INFERENCE_THREADS", threads)
        emb = OfflineEmbedder()
        seen: set[str] = set()
        real_read = emb.read_text

        def read_and_note(image, real_read=real_read, seen=seen):
            seen.add(threading.current_thread().name)
            return real_read(image)

        monkeypatch.setattr(emb, "read_text", read_and_note)
        out[threads] = emb.image_vectors(batch)
        readers[threads] = seen
        assert emb.ocr_runs >= 10  # every card with printed words went to OCR
    assert len(readers["1"]) == 1
    # the worker and, once MobileNetV2 is done, this thread both read from the queue
    assert any(name.startswith("gme-ocr") for name in readers["2"]) and threading.current_thread().name in readers["2"]
    np.testing.assert_array_equal(out["1"], out["2"])


def test_previous_edge_sign_matches_the_column_by_column_carry():
    from gme_data.retrieval.ocr_gate import previous_edge_sign

    rng = np.random.default_rng(4)
    sign = rng.choice([-1.0, 0.0, 0.0, 0.0, 1.0], size=(37, 53)).astype(np.float32)
    want = np.zeros_like(sign)
    for col in range(1, sign.shape[1]):
        want[:, col] = np.where(sign[:, col - 1] != 0, sign[:, col - 1], want[:, col - 1])
    np.testing.assert_array_equal(previous_edge_sign(sign), want)
