"""Real cross-modal quality of the offline default embedder on bundled photos with hand-written captions.

Prints text->image and image->text R@1 / R@5 (vs chance) for a few settings, plus time per item.
Run: ``python benchmarks/offline_default_quality.py [--configs default,torch,no-ocr,top1,top50]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from gme_data.retrieval.demo_photos import photo_caption_pairs
from gme_data.retrieval.instructions import default_instruction
from gme_data.retrieval.offline import OfflineEmbedder

CONFIGS = {
    "default": {},
    "torch": {"text_backend": "torch"},
    "no-ocr": {"ocr": False},
    "top1": {"top_k": 1},
    "top50": {"top_k": 50},
    "temp2": {"temperature": 2.0},
}


def recall_at(sim: np.ndarray, k: int) -> float:
    """Share of rows whose matching column (the diagonal) is among the top k."""
    ranks = (sim > np.diag(sim)[:, None]).sum(1)
    return float((ranks < k).mean())


def evaluate(name: str, options: dict, images: list, captions: list[str]) -> dict:
    emb = OfflineEmbedder(**options)
    t0 = time.perf_counter()
    img_vecs = emb.encode(images, role="candidate", batch_size=8)
    t_img = (time.perf_counter() - t0) / len(images)
    t0 = time.perf_counter()
    txt_vecs = emb.encode(captions, role="query", instruction=default_instruction("T->I"), batch_size=32)
    t_txt = (time.perf_counter() - t0) / len(captions)
    sim = txt_vecs @ img_vecs.T
    return {"config": name, "t2i_r1": recall_at(sim, 1), "t2i_r5": recall_at(sim, 5),
            "i2t_r1": recall_at(sim.T, 1), "i2t_r5": recall_at(sim.T, 5),
            "ms_per_image": 1000 * t_img, "ms_per_text": 1000 * t_txt}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--configs", default="default,torch,no-ocr,top1,top50,temp2",
                        help=f"comma-separated subset of {sorted(CONFIGS)}")
    args = parser.parse_args()
    names = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = [c for c in names if c not in CONFIGS]
    if unknown:
        parser.error(f"unknown configs {unknown}; choose from {sorted(CONFIGS)}")
    images, captions = photo_caption_pairs()
    n = len(images)
    print(f"{n} photo/caption pairs; chance R@1 = {1 / n:.3f}, R@5 = {min(5, n) / n:.3f}")
    print(f"{'config':<10} {'T->I R@1':>9} {'T->I R@5':>9} {'I->T R@1':>9} {'I->T R@5':>9} "
          f"{'ms/image':>9} {'ms/text':>8}")
    for name in names:
        r = evaluate(name, CONFIGS[name], images, captions)
        print(f"{r['config']:<10} {r['t2i_r1']:>9.3f} {r['t2i_r5']:>9.3f} {r['i2t_r1']:>9.3f} {r['i2t_r5']:>9.3f} "
              f"{r['ms_per_image']:>9.1f} {r['ms_per_text']:>8.1f}")


if __name__ == "__main__":
    main()
