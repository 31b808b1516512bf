"""Where the fast GME path spends its time: pixels, vision tower, language model, and attention kernels.

For one image workload (448x448 by default) on a random-weight GME-2B, times each stage of
:mod:`gme_data.retrieval.gme_fast` alone, with device events around it, from data already where that
stage gets it:

- ``pixels``: JPEG files -> decoded, resized (worker threads) -> patches on the device;
- ``vision``: device patches -> merged image features (eager, compiled, and per SDPA backend);
- ``lm``: ids + image features -> last-token states (eager, compiled);
- ``encode``: the whole ``GmeQwen2VL.encode`` from JPEG files.

Prints items/s per stage and the FLOP rate it implies. Run on a CUDA machine:
``python benchmarks/gme_fast_breakdown.py [--size 448] [--n 256]``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.gme_throughput import write_jpegs
from gme_data import Item
from gme_data.retrieval.gme_fast import FastGmeForward, PixelPipeline, plan_batches, plan_items
from gme_data.retrieval.gme_qwen2vl import GmeQwen2VL
from gme_data.retrieval.instructions import CANDIDATE_INSTRUCTION
from gme_data.retrieval.qwen2vl_configs import random_qwen2vl
from gme_data.retrieval.qwen_tokenizer import build_qwen2vl_tokenizer


def clock(fn, repeats: int = 3) -> float:
    """Fastest of ``repeats`` runs of ``fn`` in seconds (synchronised)."""
    best = float("inf")
    cuda = torch.cuda.is_available()
    for _ in range(repeats):
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, nargs=2, default=[448, 448], help="image width height")
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--patches", type=int, default=65536, help="vision patches per batch")
    parser.add_argument("--tiny", action="store_true", help="tiny model on the CPU (a smoke run of this script)")
    args = parser.parse_args()
    dev = torch.device("cpu" if args.tiny else "cuda")
    model = random_qwen2vl("tiny" if args.tiny else "2b", seed=0, dtype=torch.float32 if args.tiny else torch.bfloat16,
                           device=str(dev))
    tok = build_qwen2vl_tokenizer()
    emb = GmeQwen2VL(model, tok, fast_path=True, compile=False)
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_jpegs(Path(tmp), tuple(args.size), args.n, seed=1)
        items = [Item(image=p, id=str(i)) for i, p in enumerate(paths)]
        planned = plan_items(emb, items, CANDIDATE_INSTRUCTION)
        batches = plan_batches(planned, 1 << 30, args.patches)
        grid = planned[0].grid
        pipe = PixelPipeline(emb.processor, dev, emb.dtype)

        def pixels() -> list[torch.Tensor]:
            out = []
            for b in batches:
                arrays = [f.result() for f in pipe.submit([(items[p.index], p.size) for p in b])]
                out.append(pipe.patches(arrays, grid))
            return out

        t_pix = clock(pixels, 2)
        patches = pixels()
        ids = [torch.tensor([p.ids for p in b], device=dev) for b in batches]
        last = [torch.full((len(b),), len(b[0].ids) - 1, device=dev) for b in batches]
        ids_cpu = [t.cpu() for t in ids]
        index = [(t == emb.image_token_id).reshape(-1).nonzero().squeeze(1).to(dev) for t in ids_cpu]
        rows = []
        flops_v = 2 * sum(p.numel() for n, p in model.visual.named_parameters() if "blocks" in n) * grid[1] * grid[2]
        flops_l = 2 * sum(p.numel() for n, p in model.language_model.named_parameters()
                          if "layers" in n) * len(planned[0].ids)
        rows.append(("pixels (decode+resize threads, patch on device)", args.n / t_pix, None))
        for label, compile_ in (("eager", False), ("compiled", True)):
            runner = FastGmeForward(model, "reference", compile=compile_)
            feats = [runner.vision(p, grid) for p in patches]  # warm-up (and compile)
            feats = [runner.vision(p, grid) for p in patches]
            t_vis = clock(lambda r=runner: [r.vision(p, grid) for p in patches])
            [runner.last_states(i, x, f, la) for i, x, f, la in zip(ids, index, feats, last, strict=True)]
            t_lm = clock(lambda r=runner, fs=feats: [r.last_states(i, x, f, la)
                                                     for i, x, f, la in zip(ids, index, fs, last, strict=True)])
            rows.append((f"vision {label}", args.n / t_vis, flops_v * args.n / t_vis / 1e12))
            rows.append((f"lm {label}", args.n / t_lm, flops_l * args.n / t_lm / 1e12))
            if not compile_:
                from torch.nn.attention import SDPBackend, sdpa_kernel

                for name, backend in (("flash", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION),
                                      ("efficient", SDPBackend.EFFICIENT_ATTENTION)):
                    try:
                        with sdpa_kernel([backend]):
                            runner.vision(patches[0], grid)
                            t = clock(lambda r=runner: [r.vision(p, grid) for p in patches])
                        rows.append((f"vision eager sdpa={name}", args.n / t, flops_v * args.n / t / 1e12))
                    except RuntimeError as exc:
                        rows.append((f"vision eager sdpa={name}: {str(exc)[:60]}", 0.0, None))
        pipe.close()
        for label, compile_ in (("eager", False), ("compiled", True)):
            full = GmeQwen2VL(model, tok, fast_path=True, compile=compile_)
            full.encode(items[:64])
            t = clock(lambda f=full: f.encode(items), 2)
            rows.append((f"encode {label} (whole path from JPEG)", args.n / t, (flops_v + flops_l) * args.n / t / 1e12))
    print(f"\n{torch.cuda.get_device_name() if not args.tiny else 'CPU'}, torch {torch.__version__}, {args.n} images {args.size}, "
          f"grid {grid}, {len(batches)} batches of <= {args.patches} patches")
    print(f"{'stage':<52} {'items/s':>9} {'TFLOP/s (matmul)':>17}")
    for label, rate, tf in rows:
        print(f"{label:<52} {rate:>9.1f} {'' if tf is None else f'{tf:.0f}':>17}")


if __name__ == "__main__":
    main()
