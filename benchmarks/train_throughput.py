"""Training throughput of GME-2B's architecture with LoRA: samples/s and peak memory.

Random weights built from the config (Qwen2-VL-2B sizes: hidden 1536, 28 layers, vision embed 1280,
depth 32), LoRA r=8 / alpha 16 on q/k/v/o, bf16, gradient checkpointing, GradCache, fused items
(image + text) on both sides, K hard negatives per query, one optimizer step per batch: exactly
the path ``gme_data.training.train`` runs for the GME family.

    python benchmarks/train_throughput.py                       # CUDA, 2B sizes, a small sweep
    python benchmarks/train_throughput.py --batch 64 --chunk 16 --image-tokens 1024
    python benchmarks/train_throughput.py --tiny                # CPU, tiny config, seconds

A "sample" is one query with its positive and K negatives (1 + 1 + K items embedded).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gme_data.records import Item  # noqa: E402
from gme_data.training.gme_lora import (  # noqa: E402
    GmeLoraTrainable,
    qwen2vl_config,
    random_gme_embedder,
    tiny_qwen2vl_config,
)
from gme_data.training.trainer import contrastive_step  # noqa: E402

WORDS = ("red blue green small large round square old new bright dark wooden metal glass stone river "
         "mountain city bird flower car house tree water light shadow").split()


def _image(rng: np.random.Generator, tokens: int) -> Image.Image:
    # tokens = (H/28) * (W/28) after the 2x2 merge; square-ish images
    side = max(1, int(round(np.sqrt(tokens))))
    h, w = side, max(1, tokens // side)
    arr = rng.integers(0, 255, size=(h * 28, w * 28, 3), dtype=np.uint8)
    return Image.fromarray(arr)


def _text(rng: np.random.Generator, words: int) -> str:
    return " ".join(rng.choice(WORDS, size=words).tolist())


def make_batch(rng: np.random.Generator, batch: int, negatives: int, image_tokens: int, text_words: int):
    """Fused queries and fused candidates (positive + K negatives per query), as the trainer sees them."""
    q = [Item(text=_text(rng, text_words), image=_image(rng, image_tokens)) for _ in range(batch)]
    c = [Item(text=_text(rng, text_words), image=_image(rng, image_tokens)) for _ in range(batch * (1 + negatives))]
    q_chunk = (q, "query", ["Find an image with a description that answers the question."] * batch)
    c_chunk = (c, "candidate", [None] * len(c))
    pos_keys = [("id", f"p{i}") for i in range(batch)]
    c_keys = pos_keys + [("id", f"n{i}") for i in range(batch * negatives)]
    return q_chunk, c_chunk, pos_keys, c_keys


def _peak_reset(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def _peak_gib(device: str) -> float:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB (process peak RSS)


def run_one(model: GmeLoraTrainable, device: str, batch: int, negatives: int, chunk: int | None,
            image_tokens: int, text_words: int, steps: int, warmup: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    params = model.trainable_parameters()
    opt = torch.optim.AdamW(params, lr=1e-4)
    model.set_train(True)
    data = [make_batch(rng, batch, negatives, image_tokens, text_words) for _ in range(min(steps + warmup, 3))]
    times, losses = [], []
    for s in range(warmup + steps):
        if s == warmup:
            _peak_reset(device)
        q, c, pk, ck = data[s % len(data)]
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = contrastive_step(model, q, c, pk, ck, 0.03, chunk)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        if s >= warmup:
            times.append(time.perf_counter() - t0)
            losses.append(loss)
    step_s = float(np.median(times))
    return {"batch": batch, "negatives": negatives, "chunk": chunk or "-", "image_tokens": image_tokens,
            "items/step": batch * (2 + negatives), "step_s": step_s, "samples/s": batch / step_s,
            "items/s": batch * (2 + negatives) / step_s, "peak_GiB": _peak_gib(device),
            "loss": float(np.mean(losses))}


def print_table(rows: list[dict], header: str) -> None:
    cols = ["batch", "negatives", "chunk", "image_tokens", "items/step", "step_s", "samples/s", "items/s",
            "peak_GiB"]
    fmt = {"step_s": "{:.3f}", "samples/s": "{:.2f}", "items/s": "{:.1f}", "peak_GiB": "{:.2f}"}
    cells = [[fmt.get(c, "{}").format(r[c]) if isinstance(r[c], (int, float)) else str(r[c]) for c in cols]
             for r in rows]
    widths = [max(len(c), *(len(x[i]) for x in cells)) for i, c in enumerate(cols)]
    print(header)
    print("| " + " | ".join(c.rjust(w) for c, w in zip(cols, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for x in cells:
        print("| " + " | ".join(v.rjust(w) for v, w in zip(x, widths, strict=True)) + " |")


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiny", action="store_true", help="tiny config on CPU (a smoke run)")
    ap.add_argument("--device", default=None, help="default: cuda (cpu with --tiny)")
    ap.add_argument("--dtype", default=None, help="bf16 (CUDA default) | fp32 (CPU default)")
    ap.add_argument("--batch", type=int, nargs="*", default=None, help="queries per step (several = sweep)")
    ap.add_argument("--negatives", type=int, default=None, help="hard negatives per query (K)")
    ap.add_argument("--chunk", type=int, nargs="*", default=None, help="GradCache chunk size(s); 0 = no GradCache")
    ap.add_argument("--image-tokens", type=int, default=None, help="visual tokens per image (after 2x2 merge)")
    ap.add_argument("--text-words", type=int, default=None, help="words per text")
    ap.add_argument("--steps", type=int, default=None, help="timed steps")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--no-checkpointing", action="store_true", help="disable gradient checkpointing")
    ap.add_argument("--attn", default="sdpa", help="attention implementation (sdpa | flash_attention_2 | eager)")
    args = ap.parse_args(argv)

    if args.tiny:
        device = args.device or "cpu"
        config = tiny_qwen2vl_config()
        batches, chunks = args.batch or [4], args.chunk or [4]
        negatives = 1 if args.negatives is None else args.negatives
        image_tokens, text_words, steps = args.image_tokens or 4, args.text_words or 8, args.steps or 2
    else:
        device = args.device or "cuda"
        if device.startswith("cuda") and not torch.cuda.is_available():
            ap.error("CUDA is not available: use --tiny for a CPU smoke run")
        config = qwen2vl_config(attn_implementation=args.attn)
        batches, chunks = args.batch or [32], args.chunk or [8, 32]
        negatives = 1 if args.negatives is None else args.negatives
        image_tokens, text_words, steps = args.image_tokens or 256, args.text_words or 24, args.steps or 3
    min_tokens = max(4, image_tokens // 4)
    t0 = time.perf_counter()
    emb = random_gme_embedder(config, seed=0, device=device, dtype=args.dtype, min_image_tokens=min_tokens,
                              max_image_tokens=max(image_tokens, min_tokens), name="random-qwen2vl-bench")
    model = GmeLoraTrainable(emb, base_spec="random", gradient_checkpointing=not args.no_checkpointing)
    n_params = sum(p.numel() for p in emb.model.parameters())
    n_lora = sum(p.numel() for p in model.trainable_parameters())
    header = (f"GME LoRA training throughput on {device}"
              f"{' (' + torch.cuda.get_device_name() + ')' if device.startswith('cuda') else ''}: "
              f"{'tiny' if args.tiny else 'Qwen2-VL-2B sizes'}, {n_params / 1e6:.1f}M params, LoRA {n_lora / 1e6:.2f}M "
              f"(r=8), dtype {str(emb.dtype).replace('torch.', '')}, gradient checkpointing "
              f"{'off' if args.no_checkpointing else 'on'}, attn {config._attn_implementation}, "
              f"fused items, build {time.perf_counter() - t0:.1f}s")
    rows = []
    for b in batches:
        for ch in chunks:
            try:
                rows.append(run_one(model, device, b, negatives, ch or None, image_tokens, text_words, steps,
                                    args.warmup))
            except torch.OutOfMemoryError:
                rows.append({"batch": b, "negatives": negatives, "chunk": ch or "-", "image_tokens": image_tokens,
                             "items/step": b * (2 + negatives), "step_s": float("nan"), "samples/s": float("nan"),
                             "items/s": float("nan"), "peak_GiB": float("nan"), "loss": float("nan")})
                print(f"batch {b} chunk {ch}: out of memory", file=sys.stderr)
                if device.startswith("cuda"):
                    torch.cuda.empty_cache()
    print_table(rows, header)
    return rows


if __name__ == "__main__":
    main()
