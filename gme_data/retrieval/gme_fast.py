"""The fast inference path of the GME runtime: packed-by-shape batches, dense vision attention, no padding mask.

Same vectors as :meth:`GmeQwen2VL.embed_tensors` (the plain transformers forward) within float rounding,
computed with less work:

- **Batches by token budget.** Items are planned before any pixel is decoded (image size from the file
  header, smart resize, prompt ids), sorted by length, and cut into batches of at most
  ``max_batch_tokens`` padded language-model tokens and ``max_batch_patches`` vision patches.
- **Dense vision attention.** Images of one grid are stacked into a ``[B, N, D]`` batch, so every vision
  block is one SDPA call (flash kernel on CUDA) instead of transformers' per-image loop with a host
  sync per layer.
- **No padding mask.** Rows are right-padded and attention is causal, so no real token ever attends to
  padding: the language model runs with ``is_causal`` and the last real token's state is exact.
  Only the last token of each row is normed and returned (no LM head, no full-sequence norm).
- **Pixels prepared on the device.** Worker threads decode and resize (PIL, bicubic, exactly the image
  processor's resize); rescale, normalisation and patching into ``[N, C*T*P*P]`` run on the device from
  uint8, copied from pinned memory without blocking. The next batches decode while the device computes.
- **Fused kernels** (``compile=True``, the default on CUDA): the vision block and decoder layer are pure
  functions of their weights, compiled once by ``torch.compile`` and reused by every layer.

Used by :class:`~gme_data.retrieval.gme_qwen2vl.GmeQwen2VL` for inference (``encode``) when
``fast_path`` is on (default on CUDA); training keeps the plain differentiable forward.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from gme_data.errors import InvalidItemError
from gme_data.records import Item

if TYPE_CHECKING:
    from gme_data.retrieval.gme_qwen2vl import GmeQwen2VL

logger = logging.getLogger(__name__)
BICUBIC = 3  # PIL's (and transformers' PILImageResampling) code for bicubic


# ---------------------------------------------------------------------- planning
@dataclass
class PlannedItem:
    """One item's prompt ids and image geometry, known before its pixels are decoded."""

    index: int  # position in the caller's list
    ids: list[int]
    grid: tuple[int, int, int] | None  # (t, h, w) patches, None for text items
    size: tuple[int, int] | None  # resized (width, height) in pixels


def smart_size(width: int, height: int, factor: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """Qwen2-VL's smart resize as (width, height): multiples of ``factor``, pixels within the budget."""
    try:  # the PIL backend's module imports without torchvision
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize
    except ImportError:
        from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

    h, w = smart_resize(height, width, factor=factor, min_pixels=min_pixels, max_pixels=max_pixels)
    return w, h


def image_size(item: Item) -> tuple[int, int]:
    """(width, height) of an item's image after EXIF orientation, from the file header when it is a file."""
    src = item.image
    if isinstance(src, (str, bytes)) or hasattr(src, "__fspath__"):
        try:
            fp = io.BytesIO(src) if isinstance(src, bytes) else open(src, "rb")  # noqa: SIM115
            with fp, Image.open(fp) as img:
                w, h = img.size
                rotated = img.getexif().get(0x0112, 1) in (5, 6, 7, 8)  # EXIF orientation with a 90 degree turn
            return (h, w) if rotated else (w, h)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            pass  # load_image below raises the named error
    return item.load_image().size


def plan_batches(planned: Sequence[PlannedItem], max_tokens: int, max_patches: int,
                 max_items: int | None = None) -> list[list[PlannedItem]]:
    """Sort by (image grid, length) and cut into batches within the token and patch budgets.

    Padded LM tokens (rows x longest row) stay within ``max_tokens`` and vision patches within
    ``max_patches``; a single item larger than a budget still gets a batch of its own.
    """
    order = sorted(planned, key=lambda p: (p.grid is not None, p.grid or (0, 0, 0), len(p.ids), p.index))
    batches: list[list[PlannedItem]] = []
    cur: list[PlannedItem] = []
    longest = patches = 0
    for p in order:
        n_patch = int(np.prod(p.grid)) if p.grid else 0
        new_longest = max(longest, len(p.ids))
        fits = (new_longest * (len(cur) + 1) <= max_tokens and patches + n_patch <= max_patches
                and (max_items is None or len(cur) < max_items))
        if cur and not fits:
            batches.append(cur)
            cur, longest, patches = [], 0, 0
            new_longest = len(p.ids)
        cur.append(p)
        longest, patches = new_longest, patches + n_patch
    if cur:
        batches.append(cur)
    return batches


# ---------------------------------------------------------------------- pixels
class PixelPipeline:
    """Decode + resize in worker threads; rescale, normalise and patch on the device."""

    def __init__(self, processor: Any, device: torch.device, dtype: torch.dtype, workers: int | None = None,
                 pre_resize: Callable[[Image.Image], Image.Image] | None = None):
        self.pre_resize = pre_resize  # a runtime profile's resize before the processor (gme_profiles)
        self.patch = int(processor.patch_size)
        self.merge = int(processor.merge_size)
        self.temporal = int(processor.temporal_patch_size)
        self.on_device = _standard_processor(processor)
        self.processor = processor
        self.device, self.dtype = device, dtype
        mean = torch.tensor(list(processor.image_mean), dtype=torch.float32)
        std = torch.tensor(list(processor.image_std), dtype=torch.float32)
        scale = float(processor.rescale_factor)
        # (x * scale - mean) / std == x * a + b, computed in float32 on the device
        self._a = (scale / std).view(1, 3, 1, 1).to(device)
        self._b = (-mean / std).view(1, 3, 1, 1).to(device)
        self.pool = ThreadPoolExecutor(max_workers=workers or min(16, os.cpu_count() or 2),
                                       thread_name_prefix="gme-pixels")

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def load(self, item: Item, size: tuple[int, int]) -> np.ndarray:
        """One image as uint8 ``[H, W, 3]`` at ``size`` (or as processor patches when not on-device)."""
        img = item.load_image()
        if self.pre_resize is not None:
            img = self.pre_resize(img)
        if not self.on_device:
            try:
                return self.processor(images=[img], return_tensors="np")["pixel_values"]
            except ValueError as exc:
                raise InvalidItemError(f"item {item.id or '<unnamed item>'}: image rejected: {exc}") from exc
        if img.mode != "RGB":
            img = img.convert("RGB")
        if img.size != size:
            img = img.resize(size, Image.Resampling.BICUBIC)
        return np.asarray(img, dtype=np.uint8)

    def submit(self, items: Sequence[tuple[Item, tuple[int, int]]]) -> list[Future]:
        return [self.pool.submit(self.load, it, size) for it, size in items]

    def patches(self, arrays: list[np.ndarray], grid: tuple[int, int, int]) -> torch.Tensor:
        """``[B, N, C*T*P*P]`` patches in the model's dtype for same-grid images, built on the device."""
        if not self.on_device:
            stacked = torch.from_numpy(np.stack(arrays))
            if self.device.type == "cuda":
                stacked = stacked.pin_memory()
            return stacked.to(self.device, non_blocking=True).to(self.dtype)
        host = torch.from_numpy(np.stack(arrays))  # [B, H, W, 3] uint8
        if self.device.type == "cuda":
            host = host.pin_memory()
        x = host.to(self.device, non_blocking=True).permute(0, 3, 1, 2).float()
        x = x * self._a + self._b  # [B, 3, H, W]
        b, c, h, w = x.shape
        p, m, t = self.patch, self.merge, self.temporal
        gh, gw = h // p, w // p
        x = x.reshape(b, c, gh // m, m, p, gw // m, m, p).permute(0, 2, 5, 3, 6, 1, 4, 7)
        x = x.unsqueeze(6).expand(b, gh // m, gw // m, m, m, c, t, p, p)
        return x.reshape(b, gh * gw * grid[0], c * t * p * p).to(self.dtype)


def _standard_processor(proc: Any) -> bool:
    """True when the image processor does exactly RGB -> bicubic resize -> rescale -> normalise -> patch."""
    try:
        return (int(getattr(proc, "resample", -1)) == BICUBIC and bool(proc.do_rescale) and bool(proc.do_normalize)
                and bool(getattr(proc, "do_convert_rgb", True)) and len(proc.image_mean) == 3
                and len(proc.image_std) == 3)
    except (AttributeError, TypeError, ValueError):
        return False


# ---------------------------------------------------------------------- pure layer functions
def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def vision_block(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, w: tuple[torch.Tensor, ...],
                 heads: int, eps: float, act: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """One Qwen2-VL vision block on a dense ``[B, N, D]`` batch of same-grid images."""
    n1w, n1b, qkv_w, qkv_b, proj_w, proj_b, n2w, n2b, fc1_w, fc1_b, fc2_w, fc2_b = w
    b, n, d = x.shape
    h = F.layer_norm(x, (d,), n1w, n1b, eps)
    q, k, v = F.linear(h, qkv_w, qkv_b).view(b, n, 3, heads, d // heads).permute(2, 0, 3, 1, 4).unbind(0)
    qf, kf = q.float(), k.float()
    q = (qf * cos + _rotate_half(qf) * sin).to(x.dtype)
    k = (kf * cos + _rotate_half(kf) * sin).to(x.dtype)
    o = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, d)
    x = x + F.linear(o, proj_w, proj_b)
    h = F.layer_norm(x, (d,), n2w, n2b, eps)
    return x + F.linear(act(F.linear(h, fc1_w, fc1_b)), fc2_w, fc2_b)


def _rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    xf = x.float()
    xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return weight * xf.to(x.dtype)


def decoder_layer(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, w: tuple[torch.Tensor, ...],
                  heads: int, kv_heads: int, eps: float) -> torch.Tensor:
    """One Qwen2 decoder layer, causal, on a right-padded ``[B, L, D]`` batch (no padding mask needed)."""
    ln1, q_w, q_b, k_w, k_b, v_w, v_b, o_w, ln2, gate_w, up_w, down_w = w
    b, L, d = x.shape
    hd = d // heads
    h = _rms_norm(x, ln1, eps)
    q = F.linear(h, q_w, q_b).view(b, L, heads, hd).transpose(1, 2)
    k = F.linear(h, k_w, k_b).view(b, L, kv_heads, hd).transpose(1, 2)
    v = F.linear(h, v_w, v_b).view(b, L, kv_heads, hd).transpose(1, 2)
    q = q * cos + _rotate_half(q) * sin
    k = k * cos + _rotate_half(k) * sin
    rep = heads // kv_heads
    if rep > 1:
        k = k[:, :, None].expand(b, kv_heads, rep, L, hd).reshape(b, heads, L, hd)
        v = v[:, :, None].expand(b, kv_heads, rep, L, hd).reshape(b, heads, L, hd)
    o = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, L, d)
    x = x + F.linear(o, o_w)
    h = _rms_norm(x, ln2, eps)
    return x + F.linear(F.silu(F.linear(h, gate_w)) * F.linear(h, up_w), down_w)


# ---------------------------------------------------------------------- the runner
class FastGmeForward:
    """Inference forward over a transformers ``Qwen2VLModel``'s own weights (nothing copied)."""

    def __init__(self, model: torch.nn.Module, position_mode: str, compile: bool = False):
        self.model = model
        self.visual = model.visual
        self.lm = model.language_model
        self.position_mode = position_mode
        blocks = self.visual.blocks
        attn0 = blocks[0].attn
        self.v_heads = int(getattr(attn0, "num_heads", self.visual.config.num_heads))
        self.v_eps = float(blocks[0].norm1.eps)
        self.v_act = blocks[0].mlp.act
        self.v_weights = [(b.norm1.weight, b.norm1.bias, b.attn.qkv.weight, b.attn.qkv.bias, b.attn.proj.weight,
                           b.attn.proj.bias, b.norm2.weight, b.norm2.bias, b.mlp.fc1.weight, b.mlp.fc1.bias,
                           b.mlp.fc2.weight, b.mlp.fc2.bias) for b in blocks]
        self.v_inv_freq = self.visual.rotary_pos_emb.inv_freq
        self.merge = int(self.visual.config.spatial_merge_size)
        pe = self.visual.patch_embed.proj.weight
        self.patch_weight = pe.reshape(pe.shape[0], -1)  # Conv3d with stride == kernel is a linear map
        tcfg = self.lm.config
        self.custom_lm = position_mode == "reference" and _plain_rope(self.lm) and not _sliding(tcfg)
        if self.custom_lm:
            self.heads, self.kv_heads = int(tcfg.num_attention_heads), int(tcfg.num_key_value_heads)
            self.eps = float(tcfg.rms_norm_eps)
            self.l_weights = [(ly.input_layernorm.weight, ly.self_attn.q_proj.weight, ly.self_attn.q_proj.bias,
                               ly.self_attn.k_proj.weight, ly.self_attn.k_proj.bias, ly.self_attn.v_proj.weight,
                               ly.self_attn.v_proj.bias, ly.self_attn.o_proj.weight, ly.post_attention_layernorm.weight,
                               ly.mlp.gate_proj.weight, ly.mlp.up_proj.weight, ly.mlp.down_proj.weight)
                              for ly in self.lm.layers]
            self.l_inv_freq = self.lm.rotary_emb.inv_freq
        self._vision_block: Callable[..., torch.Tensor] = vision_block
        self._decoder_layer: Callable[..., torch.Tensor] = decoder_layer
        self._rope: dict[tuple[str, Any], tuple[torch.Tensor, torch.Tensor]] = {}
        self.compiled = False
        if compile:
            self.enable_compile()

    def enable_compile(self) -> None:
        """Compile the two layer functions (once each; every layer reuses them)."""
        self._vision_block = torch.compile(vision_block, dynamic=True)
        self._decoder_layer = torch.compile(decoder_layer, dynamic=True)
        self.compiled = True

    def disable_compile(self) -> None:
        self._vision_block, self._decoder_layer, self.compiled = vision_block, decoder_layer, False

    # -- rotary tables
    def _vision_rope(self, grid: tuple[int, int, int], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        key = ("v", grid)
        if key not in self._rope:
            t, h, w = grid
            m = self.merge
            hpos = torch.arange(h).unsqueeze(1).expand(h, w)
            wpos = torch.arange(w).unsqueeze(0).expand(h, w)

            def merged(pos: torch.Tensor) -> torch.Tensor:
                return pos.reshape(h // m, m, w // m, m).permute(0, 2, 1, 3).reshape(-1)

            pos = torch.stack([merged(hpos), merged(wpos)], dim=-1).repeat(t, 1).to(device)  # [N, 2]
            inv = self.v_inv_freq.to(device=device, dtype=torch.float32)
            freqs = (pos.unsqueeze(-1).float() * inv).flatten(1)  # [N, 2 * len(inv)]: h freqs then w freqs
            emb = torch.cat([freqs, freqs], dim=-1)
            self._rope[key] = (emb.cos().view(1, 1, *emb.shape), emb.sin().view(1, 1, *emb.shape))
        return self._rope[key]

    def _text_rope(self, length: int, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        key = ("t", length)
        if key not in self._rope:
            pos = torch.arange(length, device=device, dtype=torch.float32)
            freqs = torch.outer(pos, self.l_inv_freq.to(device=device, dtype=torch.float32))
            emb = torch.cat([freqs, freqs], dim=-1)
            self._rope[key] = (emb.cos().to(dtype).view(1, 1, length, -1), emb.sin().to(dtype).view(1, 1, length, -1))
        return self._rope[key]

    # -- forward pieces
    @torch.inference_mode()
    def vision(self, patches: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
        """``[B, N, C*T*P*P]`` same-grid patches -> ``[B * N / merge^2, hidden]`` merged image features."""
        b, n, _ = patches.shape
        x = F.linear(patches, self.patch_weight)
        cos, sin = self._vision_rope(grid, x.device)
        for w in self.v_weights:
            x = self._vision_block(x, cos, sin, w, self.v_heads, self.v_eps, self.v_act)
        return self.visual.merger(x.reshape(b * n, -1))

    @torch.inference_mode()
    def last_states(self, input_ids: torch.Tensor, image_index: torch.Tensor | None, image_feats: torch.Tensor | None,
                    last: torch.Tensor, position_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Final-layer, normed state of each row's last real token, ``[B, hidden]``."""
        emb = self.lm.embed_tokens(input_ids)
        if image_feats is not None:
            b, L, d = emb.shape
            emb = emb.reshape(b * L, d).index_copy(0, image_index, image_feats.to(emb.dtype)).view(b, L, d)
        rows = torch.arange(input_ids.shape[0], device=input_ids.device)
        if not self.custom_lm:
            out = self.lm(inputs_embeds=emb, position_ids=position_ids, attention_mask=None, use_cache=False)
            return out.last_hidden_state[rows, last]
        cos, sin = self._text_rope(input_ids.shape[1], emb.device, emb.dtype)
        x = emb
        for w in self.l_weights:
            x = self._decoder_layer(x, cos, sin, w, self.heads, self.kv_heads, self.eps)
        return self.lm.norm(x[rows, last])


def _plain_rope(lm: torch.nn.Module) -> bool:
    """True when the text rotary is plain RoPE (default type, no scaling), so positions 0..L-1 suffice."""
    rot = getattr(lm, "rotary_emb", None)
    if rot is None or not hasattr(rot, "inv_freq") or float(getattr(rot, "attention_scaling", 1.0)) != 1.0:
        return False
    return getattr(rot, "rope_type", "default") == "default"


def _sliding(cfg: Any) -> bool:
    types = getattr(cfg, "layer_types", None) or []
    return bool(getattr(cfg, "use_sliding_window", False)) or any(t != "full_attention" for t in types)


# ---------------------------------------------------------------------- encode
def plan_items(emb: GmeQwen2VL, items: Sequence[Item], instruction: str,
               pool: ThreadPoolExecutor | None = None) -> list[PlannedItem]:
    """Prompt ids, grid and resized size of every item (image headers only, no decoding).

    Headers are read in ``pool``'s threads when given; prompts are tokenised in one batch call, each
    with a single image pad that is expanded afterwards (same ids as ``emb.item_ids``; an over-long
    prompt takes that exact path, which truncates its text).
    """
    from gme_data.retrieval.gme_qwen2vl import gme_prompt

    factor = emb.processor.patch_size * emb.merge
    lo, hi = emb.min_image_tokens * 28 * 28, emb.max_image_tokens * 28 * 28

    def geometry(it: Item) -> tuple[tuple[int, int, int], tuple[int, int]] | None:
        if it.image is None:
            return None
        try:
            raw = emb.pre_resize(it.load_image()).size if emb.pre_resize is not None else image_size(it)
            w, h = smart_size(*raw, factor=factor, min_pixels=lo, max_pixels=hi)
        except ValueError as exc:
            raise InvalidItemError(f"item {it.id or '<unnamed item>'}: image rejected: {exc}") from exc
        return (1, h // emb.processor.patch_size, w // emb.processor.patch_size), (w, h)

    geo = list(pool.map(geometry, items)) if pool is not None and len(items) >= 32 else [geometry(it) for it in items]
    prompts = [gme_prompt(instruction, it.text, g is not None) for it, g in zip(items, geo, strict=True)]
    encoded = emb.tokenizer(prompts, add_special_tokens=False)["input_ids"] if prompts else []
    planned = []
    for i, (it, g, ids) in enumerate(zip(items, geo, encoded, strict=True)):
        n_img = g[0][1] * g[0][2] // emb.merge ** 2 if g else 0
        if n_img > 1:
            at = ids.index(emb.image_token_id)
            ids = ids[:at] + [emb.image_token_id] * n_img + ids[at + 1:]
        if len(ids) > emb.max_length:  # the exact (slow) path truncates the text to fit
            ids = emb.item_ids(it, instruction, n_img)
        planned.append(PlannedItem(i, ids, g[0] if g else None, g[1] if g else None))
    return planned


def encode_fast(emb: GmeQwen2VL, runner: FastGmeForward, items: Sequence[Item], instruction: str,
                max_tokens: int, max_patches: int, prefetch: int = 2) -> Iterator[tuple[list[int], np.ndarray]]:
    """Yield ``(positions in items, unnormalised float32 vectors)`` per planned batch, decoding ahead."""
    device = emb.device
    pixels = PixelPipeline(emb.processor, device, emb.dtype, pre_resize=emb.pre_resize)
    try:
        planned = plan_items(emb, items, instruction, pixels.pool)
    except BaseException:
        pixels.close()
        raise
    batches = plan_batches(planned, max_tokens, max_patches)
    pad = emb.tokenizer.pad_token_id if emb.tokenizer.pad_token_id is not None else emb.eot_id
    pending: dict[int, list[Future]] = {}

    def submit(k: int) -> None:
        if k < len(batches) and k not in pending:
            pending[k] = pixels.submit([(items[p.index], p.size) for p in batches[k] if p.grid is not None])

    previous: tuple[list[int], torch.Tensor] | None = None
    try:
        for k in range(min(prefetch + 1, len(batches))):
            submit(k)
        for k, batch in enumerate(batches):
            arrays = [f.result() for f in pending.pop(k)]
            submit(k + prefetch + 1)
            out = _run_batch(emb, runner, pixels, batch, arrays, pad)
            # hand back the previous batch only now: its copy to the host waits for it alone while this
            # batch is already queued on the device, so the device never idles on a host sync
            if previous is not None:
                yield previous[0], previous[1].float().cpu().numpy()
            previous = ([p.index for p in batch], out)
        if previous is not None:
            yield previous[0], previous[1].float().cpu().numpy()
    finally:
        for futs in pending.values():
            for f in futs:
                f.cancel()
        pixels.close()


def _run_batch(emb: GmeQwen2VL, runner: FastGmeForward, pixels: PixelPipeline, batch: list[PlannedItem],
               arrays: list[np.ndarray], pad: int) -> torch.Tensor:
    device = emb.device
    width = max(len(p.ids) for p in batch)
    ids = torch.full((len(batch), width), pad, dtype=torch.long)
    for r, p in enumerate(batch):
        ids[r, : len(p.ids)] = torch.tensor(p.ids)
    last = torch.tensor([len(p.ids) - 1 for p in batch])
    feats = index = None
    position_ids = None
    image_rows = [r for r, p in enumerate(batch) if p.grid is not None]
    if image_rows:
        # vision per grid group (dense), features back in row order
        by_grid: dict[tuple[int, int, int], list[int]] = {}
        for j, r in enumerate(image_rows):
            by_grid.setdefault(batch[r].grid, []).append(j)
        parts: list[torch.Tensor | None] = [None] * len(image_rows)
        for grid, js in by_grid.items():
            out = runner.vision(pixels.patches([arrays[j] for j in js], grid), grid)
            per = out.shape[0] // len(js)
            for n, j in enumerate(js):
                parts[j] = out[n * per:(n + 1) * per]
        feats = torch.cat(parts)  # type: ignore[arg-type]
        index = (ids == emb.image_token_id).reshape(-1).nonzero().squeeze(1)  # on the host: no device sync
    if not runner.custom_lm:
        mask = torch.zeros_like(ids)
        for r, p in enumerate(batch):
            mask[r, : len(p.ids)] = 1
        grids = torch.tensor([batch[r].grid for r in image_rows]) if image_rows else None
        from gme_data.retrieval.gme_qwen2vl import GmeBatch

        mm = ((ids == emb.image_token_id) & mask.bool()).int()
        position_ids = emb.position_ids(GmeBatch(ids, mask, mm, last, None, grids).to(device))
    ids_d = _to(ids, device)
    return runner.last_states(ids_d, None if index is None else _to(index, device), feats, _to(last, device),
                              position_ids)


def _to(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


def default_budgets(device: torch.device) -> tuple[int, int]:
    """(LM tokens, vision patches) per batch: large on CUDA (fills the chip), small on CPU (memory)."""
    if device.type == "cuda":
        return 65536, 65536
    return 4096, 8192

