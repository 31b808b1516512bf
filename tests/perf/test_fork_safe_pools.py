"""Worker pools of the offline models survive a fork: a forked child that embeds gets vectors, not a hang."""

from __future__ import annotations

import multiprocessing as mp
import random
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from synthesis_corpus import draw_image  # noqa: E402

TEXTS = [f"note {i}: the {w} sat by the window" for i, w in enumerate("cat dog owl fox hen elk yak ant".split() * 5)]


def _in_forked_child(fn, timeout_s: float = 60.0) -> np.ndarray:
    ctx = mp.get_context("fork")
    results = ctx.Queue()
    child = ctx.Process(target=lambda: results.put(fn()))
    child.start()
    child.join(timeout_s)
    if child.is_alive():
        child.kill()
        pytest.fail(f"the forked child did not finish in {timeout_s:.0f} s (its inherited worker pool never ran)")
    assert child.exitcode == 0
    return results.get(timeout=5)


def test_minilm_workers_after_fork(monkeypatch):
    from gme_data.retrieval.offline import MiniLMText

    monkeypatch.setenv("GME_DATA_INFERENCE_THREADS", "2")
    model = MiniLMText()
    assert model.workers == 2
    parent = model.encode(TEXTS, batch_size=8)  # the parent's pool now has threads the child will not have
    np.testing.assert_array_equal(_in_forked_child(lambda: model.encode(TEXTS, batch_size=8)), parent)


def test_ocr_reader_after_fork(monkeypatch):
    from gme_data.retrieval.offline import OfflineEmbedder

    monkeypatch.setenv("GME_DATA_INFERENCE_THREADS", "2")
    rng = random.Random(9)
    cards = [draw_image(rng, ["FRESH", "BREAD", "DAILY", "OPEN", "LATE"]) for _ in range(4)] + [draw_image(rng)]
    emb = OfflineEmbedder()
    parent = emb.image_vectors(cards)
    assert emb.ocr_runs >= 4
    emb._ocr_memo.clear()  # the child reads the cards again, through the OCR worker pool

    def child_vectors() -> np.ndarray:
        import torch

        # torch's OpenMP (libgomp) cannot run a parallel region in a forked child of a process that ran
        # one, whatever our pools do; a forked worker keeps torch to one thread (MobileNetV2 gives the
        # same vectors on any thread count)
        torch.set_num_threads(1)
        return emb.image_vectors(cards)

    np.testing.assert_array_equal(_in_forked_child(child_vectors), parent)
