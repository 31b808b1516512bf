"""GME embedding throughput on a random-weight Qwen2-VL: plain transformers forward vs gme_data's path.

Builds the GME-2B architecture (hidden 1536, 28 layers, vision depth 32) with random weights, or a
tiny one with ``--tiny`` (CPU smoke run), and measures items/s for five workloads, both paths in the
same run on the same model:

- text queries (with a task instruction);
- images at 448x448 (256 visual tokens), 896x896 (1024 tokens) and GME's maximum (1120x896, 1280 tokens);
- fused items (a question + a 448x448 image, with an instruction).

Paths:

- ``transformers`` (the issue's baseline): what a user writes by hand, timed from *preprocessed tensors*
  (image processor + tokenizer with left padding run before the clock starts); inside the clock: the
  copy to the device, one ``Qwen2VLModel`` forward per batch (the model computes M-RoPE itself), last
  position, L2.
- ``gme_data``: ``GmeQwen2VL.encode`` in its default ``reference`` position mode, timed from *JPEG files
  on disk* (random-content JPEGs written to a temp folder first): decode, smart resize, patching,
  tokenisation, forward, pooling are all inside the clock.

``ratio`` = gme_data items/s / transformers items/s. ``max|diff|`` compares the plain path with
gme_data in ``mrope`` mode (the same math; on each workload's first two items, outside the clock), so the
table also shows both paths embed the same thing.

Run: ``python benchmarks/gme_throughput.py --tiny`` (CPU, ~1-2 min) or
``python benchmarks/gme_throughput.py --device cuda --dtype bf16``.
"""

from __future__ import annotations

import argparse
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


WORKLOADS = [
    Workload("text query", None, True, TEXT_INSTRUCTION),
    Workload("image 448x448 (256 tok)", (448, 448), False, None),
    Workload("image 896x896 (1024 tok)", (896, 896), False, None),
    Workload("image max 1120x896 (1280)", (1120, 896), False, None),
    Workload("fused 448x448 + question", (448, 448), True, FUSED_INSTRUCTION),
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
        path = folder / f"{w}x{h}_{i:04d}.jpg"
        img.save(path, quality=90)
        paths.append(str(path))
    return paths


def texts_for(n: int, seed: int) -> list[str]:
    words = ("red blue small large cat dog tower river bridge market street old new wooden glass mountain "
             "lake city night morning painting photo of a the with near under").split()
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(words, size=int(rng.integers(6, 20)))) for _ in range(n)]


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="tiny random Qwen2-VL (CPU smoke run)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default=None, help="fp32 | bf16 | fp16 (default: bf16 on CUDA, fp32 on CPU)")
    parser.add_argument("--n-images", type=int, default=None, help="items per image / fused workload")
    parser.add_argument("--n-texts", type=int, default=None, help="text queries")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=1,
                        help="time each path this many times (interleaved) and keep the fastest")
    parser.add_argument("--attn", default="sdpa", help="attention implementation (sdpa | eager | flash_attention_2)")
    args = parser.parse_args()
    small = args.tiny or args.device == "cpu"
    n_img = args.n_images or (4 if small else 64)
    n_txt = args.n_texts or (16 if small else 512)
    bs = args.batch_size or (4 if small else 16)
    dtype = resolve_dtype(args.dtype, args.device)

    t0 = time.perf_counter()
    model = random_qwen2vl("tiny" if args.tiny else "2b", seed=0, dtype=dtype, device=args.device,
                           attn_implementation=args.attn)
    tok = build_qwen2vl_tokenizer()
    name = "random-tiny" if args.tiny else "random-2b"
    ref = GmeQwen2VL(model, tok, name=name)
    mrope = GmeQwen2VL(model, tok, name=name, position_mode="mrope")
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU"
    print(f"model {name} ({sum(p.numel() for p in model.parameters()) / 1e6:.1f}M params) on {args.device} "
          f"({device_name}), {dtype}, attn {args.attn}, batch {bs}; built in {time.perf_counter() - t0:.1f}s",
          flush=True)

    rows = []
    with tempfile.TemporaryDirectory(prefix="gme-throughput-") as tmp:
        # warm-up once, both paths, text + image (lazy imports, allocator, kernels)
        warm_paths = write_jpegs(Path(tmp), (448, 448), 1, seed=99)
        warm = [Item(text="warm-up query"), Item(image=warm_paths[0])]
        for instr, paths_, texts_ in ((TEXT_INSTRUCTION, None, ["warm-up query"]),
                                      (CANDIDATE_INSTRUCTION, warm_paths, None)):
            plain_forward(model, plain_preprocess(ref, paths_, texts_, instr, bs), args.device)
        ref.encode(warm, batch_size=bs)
        mrope.encode(warm, batch_size=bs)
        n_check = min(bs, 2)
        for w_i, wl in enumerate(WORKLOADS):
            n = n_txt if wl.size is None else n_img
            t_write = time.perf_counter()
            paths = write_jpegs(Path(tmp), wl.size, n, seed=w_i) if wl.size else None
            texts = texts_for(n, seed=w_i) if wl.with_text else None
            t_write = time.perf_counter() - t_write
            items = [Item(text=texts[i] if texts else None, image=paths[i] if paths else None, id=f"{w_i}-{i}")
                     for i in range(n)]
            role = "query" if wl.instruction else "candidate"
            instruction = wl.instruction or CANDIDATE_INSTRUCTION
            t_pre = time.perf_counter()
            batches = plain_preprocess(ref, paths, texts, instruction, bs)
            t_pre = time.perf_counter() - t_pre

            s_plain = s_gme = float("inf")
            for _ in range(max(args.repeats, 1)):
                s, plain_vecs = timed(lambda: plain_forward(model, batches, args.device), args.device)  # noqa: B023
                s_plain = min(s_plain, s)
                s, _ = timed(lambda: ref.encode(items, role=role, instruction=wl.instruction,  # noqa: B023
                                                batch_size=bs), args.device)
                s_gme = min(s_gme, s)
            check = mrope.encode(items[:n_check], role=role, instruction=wl.instruction, batch_size=bs)
            diff = float(np.abs(check - plain_vecs[:n_check]).max())
            rows.append((wl.label, n, n / s_plain, n / s_gme, diff))
            jpeg_mb = sum(Path(p).stat().st_size for p in paths) / n / 1e6 if paths else 0.0
            print(f"  {wl.label}: {n} items; JPEGs written in {t_write:.1f}s "
                  f"({jpeg_mb:.2f} MB each); plain preprocessing (untimed) {t_pre:.2f}s; "
                  f"plain {s_plain:.2f}s, gme_data {s_gme:.2f}s", flush=True)

    print()
    print(f"device {args.device} ({device_name}), {dtype}, model {name}, batch {bs}, best of {max(args.repeats, 1)}")
    header = (f"{'workload':<27} {'n':>5} {'transformers items/s':>21} {'gme_data items/s':>17} "
              f"{'ratio':>6} {'max|diff| (mrope)':>18}")
    print(header)
    print("-" * len(header))
    for label, n, r_plain, r_gme, diff in rows:
        print(f"{label:<27} {n:>5} {r_plain:>21.2f} {r_gme:>17.2f} {r_gme / r_plain:>6.2f} {diff:>18.2e}")
    print("transformers: from preprocessed tensors (forward only); gme_data: from JPEG files on disk "
          "(decode + preprocessing + forward); ratio = gme_data / transformers")


if __name__ == "__main__":
    main()
