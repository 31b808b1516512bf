"""GME embedding throughput on a random-weight Qwen2-VL: plain transformers vs gme_data's fast path.

Builds the GME-2B architecture (hidden 1536, 28 layers, vision depth 32) with random weights, or a
tiny one with ``--tiny`` (CPU smoke run), and measures items/s for the issue's workloads, every path in
the same run on the same model:

- text queries of 32 text tokens (with a task instruction);
- images at 448x448 (256 visual tokens) and at GME's maximum (1120x896, 1280 visual tokens);
- fused items (a question + a 448x448 image, with an instruction).

Paths:

- ``transformers`` (the issue's baseline): what a user writes by hand, timed from *preprocessed tensors*
  (image processor + tokenizer with left padding run before the clock starts); inside the clock: the
  copy to the device, one ``Qwen2VLModel`` forward per batch of ``--batch-size`` (SDPA), last position, L2.
- ``fast`` / ``fast+compile``: ``GmeQwen2VL.encode`` on the fast path (gme_data.retrieval.gme_fast),
  eager and with ``torch.compile``, timed from *JPEG files on disk*: decode, resize, patching,
  tokenisation, forward, pooling and the copy back are all inside the clock.

``ratio`` = fast items/s / transformers items/s. Parity: 1,000 mixed items (text, images of random
sizes, fused) embedded by gme_data's plain path (transformers forward, reference positions) and by the
fast path: max |diff| of the vectors and top-10 agreement of each item's nearest neighbours.

Run: ``python benchmarks/gme_throughput.py --tiny`` (CPU) or ``python benchmarks/gme_throughput.py``
on a CUDA machine (bf16); ``--out FILE`` also writes the table as JSON.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gme_data import Item
from gme_data.retrieval.gme_qwen2vl import GmeQwen2VL, gme_prompt, resolve_dtype
from gme_data.retrieval.instructions import CANDIDATE_INSTRUCTION
from gme_data.retrieval.qwen2vl_configs import random_qwen2vl
from gme_data.retrieval.qwen_tokenizer import build_qwen2vl_tokenizer

TEXT_INSTRUCTION = "Find an image that matches the given text."
FUSED_INSTRUCTION = "Retrieve a Wikipedia paragraph that answers the question about the image."


@dataclass
class Workload:
    label: str
    size: tuple[int, int] | None  # image (width, height), None for text queries
    with_text: bool
    instruction: str | None  # None -> candidate role (GME's default system prompt)
    count: int  # items on a GPU run (the tiny CPU run divides by 16)


WORKLOADS = [
    Workload("text query (32 tokens)", None, True, TEXT_INSTRUCTION, 4096),
    Workload("image 448x448 (256 tok)", (448, 448), False, None, 512),
    Workload("image 1120x896 (1280 tok)", (1120, 896), False, None, 96),
    Workload("fused 448x448 + question", (448, 448), True, FUSED_INSTRUCTION, 256),
]


def write_jpegs(folder: Path, size: tuple[int, int], n: int, seed: int) -> list[str]:
    """``n`` random-content JPEGs of ``size`` (smooth noise, so they compress like photos, not static)."""
    rng = np.random.default_rng(seed)
    w, h = size
    paths = []
    for i in range(n):
        coarse = rng.integers(0, 256, (max(h // 16, 1), max(w // 16, 1), 3), dtype=np.uint8)
        img = Image.fromarray(coarse).resize((w, h), Image.Resampling.BILINEAR)
        noise = rng.integers(-12, 13, (h, w, 3))
        img = Image.fromarray(np.clip(np.asarray(img, dtype=np.int16) + noise, 0, 255).astype(np.uint8))
        path = folder / f"{w}x{h}_{seed}_{i:04d}.jpg"
        img.save(path, quality=90)
        paths.append(str(path))
    return paths


WORDS = ("red blue small large cat dog tower river bridge market street old new wooden glass mountain lake city "
         "night morning painting photo of a the with near under green white black tall short stone house road").split()


def texts_for(n: int, seed: int, tokenizer, n_tokens: int | None = None) -> list[str]:
    """Random word sequences; with ``n_tokens`` each is cut to exactly that many tokens."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        text = " ".join(rng.choice(WORDS, size=int(rng.integers(6, 20)) if n_tokens is None else 2 * n_tokens))
        if n_tokens is not None:
            text = tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"][:n_tokens])
        out.append(text)
    return out


def plain_preprocess(emb: GmeQwen2VL, paths: list[str] | None, texts: list[str] | None, instruction: str,
                     batch_size: int) -> list[dict[str, torch.Tensor]]:
    """The hand-written baseline's preprocessing (run before timing): image processor + left-padded ids."""
    n = len(paths) if paths is not None else len(texts)
    batches = []
    for start in range(0, n, batch_size):
        txts = texts[start:start + batch_size] if texts is not None else None
        imgs = [Image.open(p).convert("RGB") for p in paths[start:start + batch_size]] if paths is not None else None
        count = len(imgs) if imgs is not None else len(txts)
        prompts = [gme_prompt(instruction, txts[i] if txts else None, imgs is not None) for i in range(count)]
        tensors: dict[str, torch.Tensor] = {}
        if imgs is not None:
            proc = emb.processor(images=imgs, return_tensors="pt")
            counts = (proc["image_grid_thw"].prod(-1) // emb.merge ** 2).tolist()
            prompts = [p.replace("<|image_pad|>", "<|image_pad|>" * c) for p, c in zip(prompts, counts, strict=True)]
            tensors = {"pixel_values": proc["pixel_values"].to(emb.dtype), "image_grid_thw": proc["image_grid_thw"]}
        enc = emb.tokenizer(prompts, add_special_tokens=False, padding=True, padding_side="left", return_tensors="pt")
        tensors["input_ids"], tensors["attention_mask"] = enc["input_ids"], enc["attention_mask"]
        tensors["mm_token_type_ids"] = ((enc["input_ids"] == emb.image_token_id) & enc["attention_mask"].bool()).int()
        batches.append(tensors)
    return batches


def plain_forward(model: torch.nn.Module, batches: list[dict[str, torch.Tensor]], device: str) -> np.ndarray:
    """The baseline's timed part: device copy, one Qwen2VLModel forward per batch, last position, L2."""
    out = []
    with torch.inference_mode():
        for b in batches:
            model.rope_deltas = None
            inputs = {k: v.to(device) for k, v in b.items()}
            hidden = model(**inputs, use_cache=False).last_hidden_state[:, -1]
            out.append(torch.nn.functional.normalize(hidden.float(), dim=-1).cpu().numpy())
        model.rope_deltas = None
    return np.concatenate(out)


def timed(fn, device: str) -> tuple[float, object]:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    result = fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - t0, result


def mixed_items(folder: Path, n: int, seed: int, tokenizer) -> list[Item]:
    """``n`` items: a third text, a third images of random sizes (150..900 px), a third fused."""
    rng = np.random.default_rng(seed)
    texts = texts_for(n, seed, tokenizer)
    items = []
    for i in range(n):
        kind = i % 3
        path = None
        if kind:
            size = (int(rng.integers(150, 900)), int(rng.integers(150, 900)))
            path = write_jpegs(folder, size, 1, seed=seed * 100000 + i)[0]
        items.append(Item(text=texts[i] if kind != 1 else None, image=path, id=f"mix-{i}"))
    return items


def top10_agreement(a: np.ndarray, b: np.ndarray, k: int = 10) -> float:
    """Mean overlap of each item's k nearest neighbours (itself excluded) under two sets of vectors."""
    def neighbours(x: np.ndarray) -> np.ndarray:
        sim = x @ x.T
        np.fill_diagonal(sim, -np.inf)
        return np.argsort(-sim, axis=1)[:, :k]

    na, nb = neighbours(a), neighbours(b)
    return float(np.mean([len(set(r) & set(s)) / k for r, s in zip(na, nb, strict=True)]))


def _pixels_on_device(emb: GmeQwen2VL) -> bool:
    from gme_data.retrieval.gme_fast import _standard_processor

    return _standard_processor(emb.processor)


def _transformers_version() -> str:
    import transformers

    return transformers.__version__


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="tiny random Qwen2-VL (CPU smoke run)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default=None, help="fp32 | bf16 | fp16 (default: bf16 on CUDA, fp32 on CPU)")
    parser.add_argument("--scale", type=float, default=None, help="multiply every workload's item count")
    parser.add_argument("--batch-sizes", default="16,128",
                        help="the baseline's batch sizes (comma-separated); ratios are against the fastest")
    parser.add_argument("--repeats", type=int, default=2, help="time each path this many times, keep the fastest")
    parser.add_argument("--parity-items", type=int, default=None, help="mixed items for the parity check")
    parser.add_argument("--no-compile", action="store_true", help="skip the compiled fast path")
    parser.add_argument("--no-eager", action="store_true", help="skip the eager fast path")
    parser.add_argument("--attn", default="sdpa", help="the baseline's attention implementation")
    parser.add_argument("--out", default=None, help="also write the results as JSON here")
    args = parser.parse_args()
    small = args.tiny or args.device == "cpu"
    scale = args.scale or (1 / 16 if small else 1.0)
    n_parity = args.parity_items or (60 if small else 1000)
    dtype = resolve_dtype(args.dtype, args.device)
    cuda = args.device.startswith("cuda")

    t0 = time.perf_counter()
    model = random_qwen2vl("tiny" if args.tiny else "2b", seed=0, dtype=dtype, device=args.device,
                           attn_implementation=args.attn)
    tok = build_qwen2vl_tokenizer()
    name = "random-tiny" if args.tiny else "random-2b"
    plain = GmeQwen2VL(model, tok, name=name, fast_path=False)
    sizes = [int(x) for x in args.batch_sizes.split(",")]
    variants = {} if args.no_eager else {"fast": GmeQwen2VL(model, tok, name=name, fast_path=True, compile=False)}
    if not args.no_compile:
        variants["fast+compile"] = GmeQwen2VL(model, tok, name=name, fast_path=True, compile=True)
    device_name = torch.cuda.get_device_name() if cuda else "CPU"
    print(f"model {name} ({sum(p.numel() for p in model.parameters()) / 1e6:.1f}M params) on {args.device} "
          f"({device_name}), {dtype}, torch {torch.__version__}, baseline attn {args.attn} batches {sizes}; "
          f"built in {time.perf_counter() - t0:.1f}s", flush=True)
    runner = next(iter(variants.values())).fast_runner()
    print(f"fast path: own decoder layers {runner.custom_lm}, pixels on device "
          f"{_pixels_on_device(plain)}, transformers {_transformers_version()}", flush=True)

    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="gme-throughput-") as tmp:
        folder = Path(tmp)
        for w_i, wl in enumerate(WORKLOADS):
            n = max(4, int(wl.count * scale))
            paths = write_jpegs(folder, wl.size, n, seed=w_i) if wl.size else None
            texts = texts_for(n, w_i, tok, n_tokens=32 if wl.size is None else None) if wl.with_text else None
            items = [Item(text=texts[i] if texts else None, image=paths[i] if paths else None, id=f"{w_i}-{i}")
                     for i in range(n)]
            role = "query" if wl.instruction else "candidate"
            instruction = wl.instruction or CANDIDATE_INSTRUCTION
            batches = {bs: plain_preprocess(plain, paths, texts, instruction, bs) for bs in sizes}
            # warm-up (kernels, allocator, compilation) on this workload's shapes, outside the clock
            for bs in sizes:
                plain_forward(model, batches[bs][:1], args.device)
            for emb in variants.values():
                t_warm = time.perf_counter()
                emb.encode(items[: max(4, n // 4)], role=role, instruction=wl.instruction)
                t_warm = time.perf_counter() - t_warm
                if t_warm > 5:
                    print(f"  warm-up {emb.fast_runner().compiled and 'compiled' or 'eager'}: {t_warm:.1f}s", flush=True)
            base_keys = [f"transformers bs{bs}" for bs in sizes]
            best = {k: float("inf") for k in [*base_keys, *variants]}
            vecs = {}
            for _ in range(max(args.repeats, 1)):
                for bs, key in zip(sizes, base_keys, strict=True):
                    s, _ = timed(lambda b=batches[bs]: plain_forward(model, b, args.device), args.device)
                    best[key] = min(best[key], s)
                for key, emb in variants.items():
                    s, v = timed(lambda: emb.encode(items, role=role, instruction=wl.instruction),  # noqa: B023
                                 args.device)
                    best[key] = min(best[key], s)
                    vecs[key] = v
            row = {"workload": wl.label, "n": n, **{f"{k} items/s": n / v for k, v in best.items()}}
            rows.append(row)
            if args.out:  # partial results survive an interrupted run
                Path(args.out).write_text(json.dumps({"device": device_name, "rows": rows}, indent=2))
            print("  " + ", ".join(f"{k}: {v:.1f}" if isinstance(v, float) else f"{k}: {v}" for k, v in row.items()),
                  flush=True)

        print(f"parity: {n_parity} mixed items ...", flush=True)
        items = mixed_items(folder, n_parity, seed=7, tokenizer=tok)
        want = plain.encode(items, role="query", instruction=FUSED_INSTRUCTION, batch_size=sizes[0])
        parity = {}
        for key, emb in variants.items():
            got = emb.encode(items, role="query", instruction=FUSED_INSTRUCTION)
            parity[key] = {"max_abs_diff": float(np.abs(got - want).max()), "top10_agreement": top10_agreement(got, want)}

    print()
    print(f"device {args.device} ({device_name}), {dtype}, torch {torch.__version__}, model {name}; "
          f"best of {max(args.repeats, 1)}")
    base_keys = [f"transformers bs{bs}" for bs in sizes]
    keys = [*base_keys, *variants]
    header = f"{'workload':<27} {'n':>5} " + " ".join(f"{k:>18}" for k in keys) + " " + " ".join(
        f"{'ratio ' + k:>19}" for k in variants)
    print(header)
    print("-" * len(header))
    for r in rows:
        base = max(r[k + " items/s"] for k in base_keys)
        print(f"{r['workload']:<27} {r['n']:>5} " + " ".join(f"{r[k + ' items/s']:>18.1f}" for k in keys) + " "
              + " ".join(f"{r[k + ' items/s'] / base:>19.2f}" for k in variants))
    for key, p in parity.items():
        print(f"parity {key} vs plain path on {n_parity} mixed items: max|diff| {p['max_abs_diff']:.2e}, "
              f"top-10 agreement {p['top10_agreement']:.3f}")
    print("items/s; transformers: from preprocessed tensors (forward only) at each batch size; fast: from JPEG "
          "files on disk (decode + preprocessing + forward); ratio = fast / the faster transformers batch size")
    if args.out:
        Path(args.out).write_text(json.dumps({"device": device_name, "dtype": str(dtype), "torch": torch.__version__,
                                              "rows": rows, "parity": parity}, indent=2))


if __name__ == "__main__":
    main()
