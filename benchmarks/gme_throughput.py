"""GME embedding throughput on a random-weight Qwen2-VL: plain transformers path vs gme_data's path.

Builds the GME-2B architecture (hidden 1536, 28 layers, vision depth 32) with random weights, or a
tiny one with ``--tiny`` (CPU smoke run), and measures items/s for three workloads: 448x448 images
(256 visual tokens), images at the max visual-token budget (1280 tokens) and short text queries.

- ``transformers``: what a user writes by hand: image processor + tokenizer with left padding, one
  ``Qwen2VLModel`` forward (the model computes M-RoPE itself), last position, L2.
- ``gme_data``: ``GmeQwen2VL.encode`` (right padding, explicit positions, per-item last token).
  The table also shows max |diff| between the plain path and gme_data in ``mrope`` mode (same math).

Run: ``python benchmarks/gme_throughput.py --tiny`` (CPU) or
``python benchmarks/gme_throughput.py --device cuda --dtype bf16``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from PIL import Image

from gme_data.retrieval.demo_photos import photo_caption_pairs
from gme_data.retrieval.gme_qwen2vl import GmeQwen2VL, gme_prompt, resolve_dtype
from gme_data.retrieval.qwen2vl_configs import random_qwen2vl
from gme_data.retrieval.qwen_tokenizer import build_qwen2vl_tokenizer

INSTRUCTION = "Find an image that matches the given text."


def plain_transformers_encode(emb: GmeQwen2VL, images: list[Image.Image] | None, texts: list[str] | None,
                              batch_size: int) -> np.ndarray:
    """The hand-written transformers path (left padding, model-computed M-RoPE, last position)."""
    tok, model = emb.tokenizer, emb.model
    n = len(images) if images is not None else len(texts)
    out = []
    for start in range(0, n, batch_size):
        imgs = images[start:start + batch_size] if images is not None else None
        txts = texts[start:start + batch_size] if texts is not None else [None] * len(imgs)
        kwargs = {}
        prompts = [gme_prompt(INSTRUCTION if images is None else "You are a helpful assistant.", t, imgs is not None)
                   for t in txts]
        if imgs is not None:
            proc = emb.processor(images=imgs, return_tensors="pt")
            counts = (proc["image_grid_thw"].prod(-1) // 4).tolist()
            prompts = [p.replace("<|image_pad|>", "<|image_pad|>" * c) for p, c in zip(prompts, counts, strict=True)]
            kwargs = {"pixel_values": proc["pixel_values"].to(emb.device),
                      "image_grid_thw": proc["image_grid_thw"].to(emb.device)}
        enc = tok(prompts, add_special_tokens=False, padding=True, padding_side="left", return_tensors="pt")
        ids, mask = enc["input_ids"].to(emb.device), enc["attention_mask"].to(emb.device)
        mm = ((ids == emb.image_token_id) & mask.bool()).int()
        with torch.inference_mode():
            model.rope_deltas = None
            hidden = model(input_ids=ids, attention_mask=mask, mm_token_type_ids=mm, use_cache=False,
                           **kwargs).last_hidden_state[:, -1]
            model.rope_deltas = None
        out.append(torch.nn.functional.normalize(hidden.float(), dim=-1).cpu().numpy())
    return np.concatenate(out)


def timed(fn, n_items: int, device: str) -> tuple[float, np.ndarray]:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    result = fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return n_items / (time.perf_counter() - t0), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="tiny random Qwen2-VL (CPU smoke run)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default=None, help="fp32 | bf16 | fp16 (default: bf16 on CUDA, fp32 on CPU)")
    parser.add_argument("--n-images", type=int, default=None, help="images per workload")
    parser.add_argument("--n-texts", type=int, default=None, help="text queries")
    parser.add_argument("--batch-size", type=int, default=None)
    args = parser.parse_args()
    small = args.tiny or args.device == "cpu"
    n_img = args.n_images or (4 if small else 64)
    n_txt = args.n_texts or (16 if small else 512)
    bs = args.batch_size or (4 if small else 16)
    dtype = resolve_dtype(args.dtype, args.device)

    t0 = time.perf_counter()
    model = random_qwen2vl("tiny" if args.tiny else "2b", seed=0, dtype=dtype, device=args.device)
    tok = build_qwen2vl_tokenizer()
    ref = GmeQwen2VL(model, tok, name="random-2b" if not args.tiny else "random-tiny")
    mrope = GmeQwen2VL(model, tok, name=ref.name, position_mode="mrope")
    print(f"model {ref.name} ({sum(p.numel() for p in model.parameters()) / 1e6:.1f}M params) on {args.device} "
          f"{dtype}, built in {time.perf_counter() - t0:.1f}s; batch {bs}")

    photos, captions = photo_caption_pairs()
    workloads = {
        "image 448x448 (256 tok)": ([photos[i % len(photos)].resize((448, 448)) for i in range(n_img)], None),
        "image max (1280 tok)": ([photos[i % len(photos)].resize((1120, 896)) for i in range(n_img)], None),
        "text query": (None, [f"{captions[i % len(captions)]} (query {i})" for i in range(n_txt)]),
    }
    print(f"{'workload':<24} {'path':<22} {'items/s':>9} {'max|diff| vs mrope':>19}")
    for label, (images, texts) in workloads.items():
        n = len(images) if images is not None else len(texts)
        items = images if images is not None else texts
        role, instr = ("candidate", None) if images is not None else ("query", INSTRUCTION)
        warm = items[: min(bs, n)]
        ref.encode(warm, role=role, instruction=instr, batch_size=bs)
        plain_transformers_encode(ref, warm if images is not None else None, warm if texts is not None else None, bs)
        rate_plain, plain = timed(lambda: plain_transformers_encode(ref, images, texts, bs), n, args.device)  # noqa: B023
        rate_ref, _ = timed(lambda: ref.encode(items, role=role, instruction=instr, batch_size=bs), n, args.device)  # noqa: B023
        rate_mrope, vm = timed(lambda: mrope.encode(items, role=role, instruction=instr, batch_size=bs), n,  # noqa: B023
                               args.device)
        print(f"{label:<24} {'transformers (plain)':<22} {rate_plain:>9.2f} {np.abs(plain - vm).max():>19.2e}")
        print(f"{label:<24} {'gme_data reference':<22} {rate_ref:>9.2f} {'':>19}")
        print(f"{label:<24} {'gme_data mrope':<22} {rate_mrope:>9.2f} {0.0:>19.2e}")


if __name__ == "__main__":
    main()
