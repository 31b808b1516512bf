"""GME embeddings on transformers' own Qwen2-VL classes (no ``trust_remote_code``).

Each item becomes GME's chat prompt (image before text)::

    <|im_start|>system\\n{instruction}<|im_end|>\\n<|im_start|>user\\n{IMG}{text}<|im_end|>\\n
    <|im_start|>assistant\\n<|endoftext|>

with IMG = ``<|vision_start|>`` + one ``<|image_pad|>`` per merged 28x28 patch + ``<|vision_end|>``.
The embedding is the final (normed) hidden state at the last real token, the ``<|endoftext|>``,
L2-normalised. Images are smart-resized to multiples of 28 with ``min_image_tokens..max_image_tokens``
visual tokens (default 256..1280) by Qwen2-VL's image processor (patch 14, merge 2, temporal patch 2,
CLIP mean/std).

Positions (``position_mode``, recorded on the embedder as ``.position_mode``):

- ``"reference"`` (default): plain sequential 1-D positions on all three M-RoPE axes, as the published
  GME inference code effectively gets; reproduces published scores.
- ``"mrope"``: real Qwen2-VL M-RoPE from the model's own ``get_rope_index``. For text-only items both
  modes give identical positions, hence identical vectors.

Unlike the reference, batches are right-padded with explicit per-item positions and a padding mask,
and image / text / fused items may be mixed: every vector is independent of batch size, padding and
batch composition (up to float rounding).

Training: :meth:`GmeQwen2VL.prepare` turns items into a tensor batch and
:meth:`GmeQwen2VL.embed_tensors` runs the differentiable forward (gradients flow, so LoRA adapters
injected into ``embedder.model`` with peft train as usual)::

    batch = emb.prepare(items, role="query", instruction="Find an image that matches the given text.")
    vecs = emb.embed_tensors(batch)          # [n, hidden] torch tensor, L2-normalised, with grad
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gme_data.errors import InvalidInputError, InvalidItemError
from gme_data.records import Item
from gme_data.retrieval.base import Embedder, as_items, resolve_instruction

#: Short names for the published checkpoints.
ALIASES = {
    "gme-2b": "Alibaba-NLP/gme-Qwen2-VL-2B-Instruct",
    "gme-7b": "Alibaba-NLP/gme-Qwen2-VL-7B-Instruct",
}
POSITION_MODES = ("reference", "mrope")
#: Over-long prompts: keep the end (text shortened, ``<|endoftext|>`` kept) or cut on the right (GME's
#: reference code; pooled on the last kept token). See :mod:`gme_data.retrieval.gme_profiles`.
TRUNCATIONS = ("keep-end", "right")
IMAGE_PLACEHOLDER = "<|vision_start|><|image_pad|><|vision_end|>"
PIXELS_PER_TOKEN = 28 * 28
logger = logging.getLogger(__name__)
_DTYPES = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
           "fp16": torch.float16, "float16": torch.float16}


def _read_json(path: Path, what: str) -> Any:
    """Parse a JSON file, naming the file and ``what`` it is when it cannot be read."""
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError(f"{path}: unreadable {what}: {exc}") from exc


def resolve_dtype(dtype: Any, device: str) -> torch.dtype:
    """``None`` -> bf16 on CUDA, fp32 on CPU; strings ``fp32/bf16/fp16`` or a torch dtype."""
    if dtype is None:
        return torch.bfloat16 if str(device).startswith("cuda") else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    if isinstance(dtype, str) and dtype.lower() in _DTYPES:
        return _DTYPES[dtype.lower()]
    raise InvalidInputError(f"dtype must be one of {sorted(_DTYPES)} or a torch.dtype, got {dtype!r}")


def resolve_device(device: Any) -> str:
    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(device)


def gme_prompt(instruction: str, text: str | None, has_image: bool) -> str:
    """GME's chat template for one item (image placeholder before the text; either may be absent)."""
    img = IMAGE_PLACEHOLDER if has_image else ""
    return (f"<|im_start|>system\n{instruction}<|im_end|>\n<|im_start|>user\n{img}{text or ''}<|im_end|>\n"
            "<|im_start|>assistant\n<|endoftext|>")


def image_processor(min_image_tokens: int = 256, max_image_tokens: int = 1280,
                    config_path: str | Path | None = None):
    """Qwen2-VL's image processor (transformers' ``Qwen2VLImageProcessorPil``) with GME's pixel budget.

    With ``config_path`` (a ``preprocessor_config.json`` or the folder holding one) every setting comes
    from that file (mean/std, patch/merge/temporal sizes, resample, rescale...) except the pixel budget,
    which is always ``min_image_tokens..max_image_tokens`` visual tokens (GME's 256..1280 by default;
    Qwen2-VL checkpoints ship a wider budget that GME does not use). Without it: Qwen2-VL's values
    (CLIP mean/std, patch 14, merge 2, temporal patch 2, bicubic).
    """
    try:  # transformers >= 5.2x: the PIL backend (imports without torchvision)
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
    except ImportError:  # older releases: the one Qwen2-VL image processor
        from transformers import Qwen2VLImageProcessor as Qwen2VLImageProcessorPil

    if not (0 < min_image_tokens <= max_image_tokens):
        raise InvalidInputError(
            f"need 0 < min_image_tokens <= max_image_tokens, got {min_image_tokens}, {max_image_tokens}"
        )
    budget = {"min_pixels": min_image_tokens * PIXELS_PER_TOKEN, "max_pixels": max_image_tokens * PIXELS_PER_TOKEN}
    if config_path is None:
        return Qwen2VLImageProcessorPil(**budget)
    path = Path(config_path)
    path = path / "preprocessor_config.json" if path.is_dir() else path
    if not path.is_file():
        raise InvalidInputError(f"image processor config not found: {path}")
    cfg = _read_json(path, "image processor config")
    if not isinstance(cfg, dict):
        raise InvalidInputError(f"{path}: expected a JSON object, got {type(cfg).__name__}")
    # the file's own budget (new "size" or legacy min/max_pixels keys) is replaced by GME's
    for key in ("size", "min_pixels", "max_pixels", "processor_class", "image_processor_type"):
        cfg.pop(key, None)
    try:
        return Qwen2VLImageProcessorPil.from_dict(cfg, **budget)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{path}: invalid Qwen2-VL image processor config: {exc}") from exc


def _has_tokenizer_files(folder: Path) -> bool:
    """A Qwen2 tokenizer needs ``tokenizer.json`` or the slow pair ``vocab.json`` + ``merges.txt``."""
    return (folder / "tokenizer.json").is_file() or (
        (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file())


def _looks_like_path(name: str) -> bool:
    """True for names that can only be filesystem paths (hub ids are ``owner/name``)."""
    return name.startswith(("/", ".", "~")) or "\\" in name or name.count("/") > 1


@dataclass
class GmeBatch:
    """Model inputs for a batch of items (right-padded)."""

    input_ids: torch.Tensor  # [n, L]
    attention_mask: torch.Tensor  # [n, L]
    mm_token_type_ids: torch.Tensor  # [n, L], 1 at image tokens
    last_index: torch.Tensor  # [n], index of the <|endoftext|> per row
    pixel_values: torch.Tensor | None  # [patches, C*T*P*P] for the image items, in item order
    image_grid_thw: torch.Tensor | None  # [n_images, 3]

    def to(self, device: str | torch.device) -> GmeBatch:
        def mv(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device)

        return GmeBatch(mv(self.input_ids), mv(self.attention_mask), mv(self.mm_token_type_ids),
                        mv(self.last_index), mv(self.pixel_values), mv(self.image_grid_thw))


class GmeQwen2VL(Embedder):
    """GME embedder over a transformers ``Qwen2VLModel`` (or ``Qwen2VLForConditionalGeneration``)."""

    modalities = ("text", "image", "fused")
    default_batch_size = 4

    def __init__(self, model: torch.nn.Module, tokenizer: Any, *, name: str = "gme-qwen2-vl",
                 processor: Any = None, min_image_tokens: int = 256, max_image_tokens: int = 1280,
                 position_mode: str = "reference", max_length: int = 1800, cache_dir: str | Path | None = None,
                 fast_path: bool | None = None, compile: bool | None = None, max_batch_tokens: int | None = None,
                 max_batch_patches: int | None = None, truncation: str = "keep-end",
                 pre_resize: Callable[[Any], Any] | None = None, runtime_profile: str = "gme_data"):
        super().__init__(cache_dir)
        if position_mode not in POSITION_MODES:
            raise InvalidInputError(f"position_mode must be one of {POSITION_MODES}, got {position_mode!r}")
        if truncation not in TRUNCATIONS:
            raise InvalidInputError(f"truncation must be one of {TRUNCATIONS}, got {truncation!r}")
        #: runtime profile (see gme_profiles): truncation mode, image pre-resize hook and the profile's name
        self.truncation, self.pre_resize, self.runtime_profile = truncation, pre_resize, runtime_profile
        base = getattr(model, "model", model)
        if not hasattr(base, "get_rope_index") or not hasattr(base, "visual"):
            raise InvalidInputError(f"model must be a transformers Qwen2-VL model, got {type(model).__name__}")
        self.model = base.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.position_mode = position_mode
        self.min_image_tokens, self.max_image_tokens = min_image_tokens, max_image_tokens
        self.max_length = max_length
        self.processor = processor or image_processor(min_image_tokens, max_image_tokens)
        cfg = self.model.config
        self.dim = int(cfg.text_config.hidden_size)
        self.image_token_id = int(cfg.image_token_id)
        self.merge = int(cfg.vision_config.spatial_merge_size)
        self.eot_id = tokenizer.convert_tokens_to_ids("<|endoftext|>")
        pad_id = tokenizer.convert_tokens_to_ids("<|image_pad|>")
        if pad_id != self.image_token_id:
            raise InvalidInputError(f"{name}: tokenizer's <|image_pad|> id is {pad_id}, the model config's "
                                    f"image_token_id is {self.image_token_id} (wrong tokenizer for this model?)")
        vis = cfg.vision_config
        for attr, want in (("patch_size", vis.patch_size), ("merge_size", vis.spatial_merge_size),
                           ("temporal_patch_size", vis.temporal_patch_size)):
            got = getattr(self.processor, attr, want)
            if got != want:
                raise InvalidInputError(f"{name}: image processor {attr}={got} does not match the vision model's {want}")
        #: inference path (see :mod:`gme_data.retrieval.gme_fast`): None = on for CUDA, off elsewhere
        self.fast_path, self.compile = fast_path, compile
        self.max_batch_tokens, self.max_batch_patches = max_batch_tokens, max_batch_patches
        self._fast_runner: Any = None
        #: where the tokenizer / image processor came from (set by :meth:`from_pretrained`)
        self.tokenizer_source = "given"
        self.image_processor_source = "given" if processor is not None else "GME defaults"

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, device: Any = None, dtype: Any = None, *,
                        position_mode: str = "reference", min_image_tokens: int = 256,
                        max_image_tokens: int = 1280, max_length: int = 1800,
                        attn_implementation: str | None = None, cache_dir: str | Path | None = None,
                        hf_cache_dir: str | Path | None = None, fast_path: bool | None = None,
                        compile: bool | None = None, max_batch_tokens: int | None = None,
                        max_batch_patches: int | None = None, truncation: str = "keep-end",
                        pre_resize: Callable[[Any], Any] | None = None, runtime_profile: str = "gme_data",
                        **hf_kwargs: Any) -> GmeQwen2VL:
        """Load a GME checkpoint (``gme-2b``, ``gme-7b``, a hub id or a local folder) with plain kwargs.

        A local folder (``config.json`` of a Qwen2-VL, saved from ``Qwen2VLForConditionalGeneration`` or
        ``Qwen2VLModel``) loads without any network access:

        - tokenizer: the folder's own files (``tokenizer.json`` or ``vocab.json`` + ``merges.txt``) when
          present, else the offline Qwen2-VL tokenizer (:func:`~gme_data.retrieval.qwen_tokenizer.build_qwen2vl_tokenizer`),
          with a log line saying so;
        - image processor: the folder's ``preprocessor_config.json`` when present, else GME's defaults;
          the pixel budget is always ``min_image_tokens..max_image_tokens`` (see :func:`image_processor`).

        The choice is recorded as ``.tokenizer_source`` / ``.image_processor_source``. A path that does not
        exist, or a folder that is not a Qwen2-VL checkpoint, raises :class:`InvalidInputError`.

        ``fast_path`` / ``compile`` / ``max_batch_tokens`` / ``max_batch_patches`` choose the inference path
        (see :mod:`~gme_data.retrieval.gme_fast`; default: fast and compiled on CUDA, plain on CPU).
        ``truncation``, ``pre_resize`` and ``runtime_profile`` come from a runtime profile
        (:func:`gme_data.retrieval.gme_profiles.load_gme` sets them with the profile's dtype and budget).
        ``cache_dir`` is the embedding cache (see :class:`~gme_data.retrieval.base.EmbeddingCache`);
        ``hf_cache_dir`` and other keyword arguments (``revision``, ``local_files_only``...) go to transformers.
        """
        if position_mode not in POSITION_MODES:
            raise InvalidInputError(f"position_mode must be one of {POSITION_MODES}, got {position_mode!r}")
        name = str(name_or_path)
        repo = ALIASES.get(name, name)
        device = resolve_device(device)
        torch_dtype = resolve_dtype(dtype, device)
        if hf_cache_dir is not None:
            hf_kwargs["cache_dir"] = str(hf_cache_dir)
        kwargs = dict(hf_kwargs)
        if attn_implementation:
            kwargs["attn_implementation"] = attn_implementation
        local = Path(repo).expanduser()
        if local.is_dir():
            model, tokenizer, tok_source = _load_local_model(local, torch_dtype, kwargs)
            has_pp = (local / "preprocessor_config.json").is_file()
            proc = image_processor(min_image_tokens, max_image_tokens, local if has_pp else None)
            proc_source = str(local / "preprocessor_config.json") if has_pp else "GME defaults"
        elif local.exists():
            raise InvalidInputError(f"model path {name!r} is a file; expected a checkpoint folder or a hub id")
        elif _looks_like_path(repo):
            raise InvalidInputError(f"model folder not found: {name!r} (no such directory)")
        else:
            model, tokenizer, tok_source = _load_hub_model(repo, name, torch_dtype, kwargs, hf_kwargs)
            proc = image_processor(min_image_tokens, max_image_tokens)
            proc_source = "GME defaults"
        model.to(device)
        emb = cls(model, tokenizer, name=name, processor=proc, min_image_tokens=min_image_tokens,
                  max_image_tokens=max_image_tokens, position_mode=position_mode, max_length=max_length,
                  cache_dir=cache_dir, fast_path=fast_path, compile=compile, max_batch_tokens=max_batch_tokens,
                  max_batch_patches=max_batch_patches, truncation=truncation, pre_resize=pre_resize,
                  runtime_profile=runtime_profile)
        emb.tokenizer_source, emb.image_processor_source = tok_source, proc_source
        if local.is_dir():  # a folder's name is its path: key caches by what is in it
            from gme_data.retrieval.weights_hash import folder_digest

            emb.weights_id = folder_digest(local)
        return emb

    # ------------------------------------------------------------------ properties
    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    @property
    def settings(self) -> dict[str, Any]:
        out = {"position_mode": self.position_mode, "min_image_tokens": self.min_image_tokens,
               "max_image_tokens": self.max_image_tokens, "max_length": self.max_length,
               "dtype": str(self.dtype).replace("torch.", "")}
        if self.truncation != "keep-end":  # defaults stay out, so existing cache keys do not change
            out["truncation"] = self.truncation
        if self.pre_resize is not None:
            out["pre_resize"] = getattr(self.pre_resize, "__name__", type(self.pre_resize).__name__)
        return out

    # ------------------------------------------------------------------ preprocessing
    def _image_inputs(self, item: Item) -> tuple[torch.Tensor, torch.Tensor]:
        img = item.load_image()
        if self.pre_resize is not None:
            img = self.pre_resize(img)
        try:
            out = self.processor(images=[img], return_tensors="pt")
        except ValueError as exc:
            raise InvalidItemError(f"item {item.id or '<unnamed item>'}: image rejected: {exc}") from exc
        return out["pixel_values"], out["image_grid_thw"][0]

    def item_ids(self, item: Item, instruction: str, n_image_tokens: int = 0) -> list[int]:
        """Token ids of one item's prompt (image pad expanded to ``n_image_tokens``), cut to ``max_length``:
        with ``truncation="keep-end"`` the text is shortened and the closing tokens kept; with ``"right"``
        the ids are cut on the right (the last kept token is pooled)."""
        has_image = n_image_tokens > 0

        def encode(text: str | None) -> list[int]:
            prompt = gme_prompt(instruction, text, has_image)
            if has_image:
                prompt = prompt.replace("<|image_pad|>", "<|image_pad|>" * n_image_tokens)
            return self.tokenizer(prompt, add_special_tokens=False)["input_ids"]

        ids = encode(item.text)
        if self.truncation == "right" and len(ids) > self.max_length:
            ids = ids[: self.max_length]  # as the reference: pooled on the last kept token
            if ids.count(self.image_token_id) != n_image_tokens:
                raise InvalidItemError(f"item {item.id or '<unnamed item>'}: right truncation at max_length="
                                       f"{self.max_length} would cut into its {n_image_tokens} image tokens")
            return ids
        if len(ids) > self.max_length and item.text:
            overflow = len(ids) - self.max_length
            text_ids = self.tokenizer(item.text, add_special_tokens=False)["input_ids"]
            keep = len(text_ids) - overflow
            if keep <= 0:
                raise InvalidItemError(f"item {item.id or '<unnamed item>'}: image and instruction alone exceed "
                                       f"max_length={self.max_length} tokens")
            ids = encode(self.tokenizer.decode(text_ids[:keep]))
            ids = ids[: self.max_length - 1] + [self.eot_id] if len(ids) > self.max_length else ids
        if len(ids) > self.max_length:
            raise InvalidItemError(f"item {item.id or '<unnamed item>'}: prompt has {len(ids)} tokens, "
                                   f"more than max_length={self.max_length}")
        return ids

    def prepare(self, items: list[Any], role: str = "query", instruction: str | None = None) -> GmeBatch:
        """Tokenise and preprocess items into a right-padded :class:`GmeBatch` (on the model's device)."""
        items = as_items(items)
        instr = resolve_instruction(role, instruction)
        rows: list[list[int]] = []
        pixels: list[torch.Tensor] = []
        grids: list[torch.Tensor] = []
        for it in items:
            n_img = 0
            if it.image is not None:
                pv, grid = self._image_inputs(it)
                pixels.append(pv)
                grids.append(grid)
                n_img = int(grid.prod()) // (self.merge ** 2)
            rows.append(self.item_ids(it, instr, n_img))
        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eot_id
        input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            input_ids[i, : len(r)] = torch.tensor(r)
            mask[i, : len(r)] = 1
        mm = ((input_ids == self.image_token_id) & mask.bool()).int()
        last = mask.sum(1) - 1
        batch = GmeBatch(input_ids, mask, mm, last,
                         torch.cat(pixels) if pixels else None, torch.stack(grids) if grids else None)
        return batch.to(self.device)

    def position_ids(self, batch: GmeBatch) -> torch.Tensor:
        """``[3, n, L]`` positions for the configured ``position_mode`` (padding gets position 0)."""
        if self.position_mode == "reference":
            mask = batch.attention_mask.long()
            pos = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)
            return pos.unsqueeze(0).expand(3, -1, -1)
        pos, _ = self.model.get_rope_index(batch.input_ids, batch.mm_token_type_ids,
                                           image_grid_thw=batch.image_grid_thw,
                                           attention_mask=batch.attention_mask)
        return pos

    # ------------------------------------------------------------------ forward
    def embed_tensors(self, batch: GmeBatch, normalize: bool = True) -> torch.Tensor:
        """Differentiable forward: ``[n, hidden]`` last-token states (L2-normalised unless ``normalize=False``)."""
        out = self.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                         position_ids=self.position_ids(batch), pixel_values=batch.pixel_values,
                         image_grid_thw=batch.image_grid_thw, use_cache=False)
        hidden = out.last_hidden_state
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        emb = hidden[rows, batch.last_index]
        return torch.nn.functional.normalize(emb.float(), dim=-1) if normalize else emb

    def _embed_batch(self, items: list[Item], role: str, instruction: str) -> np.ndarray:
        batch = self.prepare(items, role, instruction)
        with torch.inference_mode():
            emb = self.embed_tensors(batch, normalize=False)
        return emb.float().cpu().numpy()

    def _cost(self, item: Item) -> float:
        return (1e6 if item.image is not None else 0.0) + len(item.text or "")

    # ------------------------------------------------------------------ fast inference path
    @property
    def uses_fast_path(self) -> bool:
        """Whether :meth:`encode` takes the fast path (``fast_path``; default: on CUDA only)."""
        return self.device.type == "cuda" if self.fast_path is None else bool(self.fast_path)

    def fast_runner(self) -> Any:
        """The :class:`~gme_data.retrieval.gme_fast.FastGmeForward` over this model (built once)."""
        from gme_data.retrieval.gme_fast import FastGmeForward

        if self._fast_runner is None or self._fast_runner.position_mode != self.position_mode:
            use_compile = self.device.type == "cuda" if self.compile is None else bool(self.compile)
            self._fast_runner = FastGmeForward(self.model, self.position_mode, compile=use_compile)
        return self._fast_runner

    def _embed_stream(self, items: list[Item], role: str, instruction: str, batch_size: int):
        """Plain path: batches of ``batch_size``. Fast path: batches by token budget (``batch_size`` unused)."""
        if not self.uses_fast_path or not items:
            yield from super()._embed_stream(items, role, instruction, batch_size)
            return
        from gme_data.retrieval.gme_fast import default_budgets, encode_fast

        runner = self.fast_runner()
        tokens, patches = default_budgets(self.device)
        budget = (self.max_batch_tokens or tokens, self.max_batch_patches or patches)
        stream = encode_fast(self, runner, items, instruction, *budget)
        try:
            first = next(stream)
        except StopIteration:
            return
        except (InvalidInputError, InvalidItemError):
            raise
        except Exception as exc:  # noqa: BLE001 - a compiler failure falls back to the eager fast path
            if not runner.compiled:
                raise
            logger.warning("%s: torch.compile failed (%s: %s); using the fast path without compilation",
                           self.name, type(exc).__name__, exc)
            runner.disable_compile()
            self.compile = False
            stream = encode_fast(self, runner, items, instruction, *budget)
            first = next(stream)
        yield first
        yield from stream


# ---------------------------------------------------------------------- checkpoint loading
def _offline_tokenizer() -> Any:
    from gme_data.retrieval.qwen_tokenizer import build_qwen2vl_tokenizer

    return build_qwen2vl_tokenizer()


def _load_local_model(folder: Path, torch_dtype: torch.dtype, kwargs: dict[str, Any]) -> tuple[Any, Any, str]:
    """(model, tokenizer, tokenizer source) from a local Qwen2-VL folder, never touching the network."""
    from transformers import AutoTokenizer, Qwen2VLForConditionalGeneration, Qwen2VLModel

    cfg_file = folder / "config.json"
    if not cfg_file.is_file():
        raise InvalidInputError(f"model folder {folder} has no config.json (not a transformers checkpoint)")
    cfg = _read_json(cfg_file, "model config")
    model_type = cfg.get("model_type") if isinstance(cfg, dict) else None
    if model_type != "qwen2_vl":
        raise InvalidInputError(f"model folder {folder}: model_type is {model_type!r}, expected 'qwen2_vl' "
                                "(a GME / Qwen2-VL checkpoint)")
    # a folder saved from the bare Qwen2VLModel has no lm_head: load it as such (nothing missing)
    model_cls = Qwen2VLModel if "Qwen2VLModel" in (cfg.get("architectures") or []) else Qwen2VLForConditionalGeneration
    kwargs = {k: v for k, v in kwargs.items() if k not in ("local_files_only", "cache_dir", "revision")}
    try:
        model = model_cls.from_pretrained(str(folder), dtype=torch_dtype, local_files_only=True, **kwargs)
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"cannot load the Qwen2-VL checkpoint in {folder}: {exc}") from exc
    if _has_tokenizer_files(folder):
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise InvalidInputError(f"model folder {folder}: unreadable tokenizer files: {exc}") from exc
        return model, tokenizer, str(folder)
    logger.warning("model folder %s has no tokenizer files (tokenizer.json or vocab.json + merges.txt): "
                   "using the offline Qwen2-VL tokenizer", folder)
    return model, _offline_tokenizer(), "offline Qwen2-VL tokenizer"


def _load_hub_model(repo: str, name: str, torch_dtype: torch.dtype, kwargs: dict[str, Any],
                    hf_kwargs: dict[str, Any]) -> tuple[Any, Any, str]:
    """(model, tokenizer, tokenizer source) for a hub id through transformers' own loading."""
    from transformers import AutoTokenizer, Qwen2VLForConditionalGeneration

    try:
        model = Qwen2VLForConditionalGeneration.from_pretrained(repo, dtype=torch_dtype, **kwargs)
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"cannot load Qwen2-VL checkpoint {name!r} ({repo}): {exc}") from exc
    tok_kwargs = {k: v for k, v in hf_kwargs.items() if k in ("revision", "token", "local_files_only", "cache_dir")}
    try:
        return model, AutoTokenizer.from_pretrained(repo, **tok_kwargs), repo
    except (OSError, ValueError) as exc:
        logger.warning("no tokenizer for %s (%s): using the offline Qwen2-VL tokenizer", repo, exc)
        return model, _offline_tokenizer(), "offline Qwen2-VL tokenizer"
