"""GME (Qwen2-VL) fine-tuning with LoRA, on the embedders' runtime (:class:`GmeQwen2VL`).

GME's recipe: LoRA rank 8 (alpha 16) on the language model's q/k/v/o projections, lr 1e-4 with
linear decay and 6 % warm-up, bf16 on GPU (fp32 on CPU), gradient checkpointing, and a large
contrastive batch, which :func:`~gme_data.training.trainer.train` reaches with GradCache
(``grad_cache_chunk``). The vision tower and the base weights stay frozen.

A trained model is a folder::

    manifest.json   {"kind": "gme-lora", "base": "gme-2b" | "<folder>" | "base", ...}
    adapter/        peft adapter (adapter_config.json, adapter_model.safetensors)
    base/           the base checkpoint, only when it was saved alongside (tiny / local models)

:func:`load_gme_lora_embedder` loads the base through ``GmeQwen2VL.from_pretrained``, applies the
adapter (merged by default) and returns the embedder, whose ``name`` carries the adapter's hash so
embedding caches never mix base and fine-tuned vectors.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from gme_data.errors import InvalidInputError
from gme_data.file_hashes import stream_digest
from gme_data.records import Item
from gme_data.training.manifest import (
    MANIFEST,
    file_in_folder,
    hub_options,
    loading_model_folder,
    read_manifest,
)
from gme_data.training.rows import TrainRow

KIND = "gme-lora"
#: LoRA targets: q/k/v/o projections of the language model only (the vision tower uses qkv/proj).
LORA_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj)"


def qwen2vl_config(hidden: int = 1536, layers: int = 28, heads: int = 12, kv_heads: int = 2,
                   intermediate: int = 8960, vision_embed: int = 1280, vision_depth: int = 32,
                   vision_heads: int = 16, vocab: int = 151936, attn_implementation: str = "sdpa"):
    """A Qwen2-VL config; the defaults are Qwen2-VL-2B's sizes (GME-2B's backbone)."""
    from transformers import Qwen2VLConfig

    half = hidden // heads // 2
    section = [half - 2 * (half // 3), half // 3, half // 3] if half < 64 else [16, 24, 24]
    cfg = Qwen2VLConfig(
        text_config=dict(vocab_size=vocab, hidden_size=hidden, intermediate_size=intermediate,
                         num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
                         max_position_embeddings=32768, rms_norm_eps=1e-6,
                         rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": section}),
        vision_config=dict(depth=vision_depth, embed_dim=vision_embed, hidden_size=hidden, num_heads=vision_heads,
                           mlp_ratio=4, patch_size=14, spatial_merge_size=2, temporal_patch_size=2),
        tie_word_embeddings=True,
    )
    cfg._attn_implementation = attn_implementation
    return cfg


def tiny_qwen2vl_config(hidden: int = 64, layers: int = 2, vision_depth: int = 1, vision_embed: int = 32):
    """A tiny Qwen2-VL config with the real vocabulary size (real tokenizer ids fit)."""
    return qwen2vl_config(hidden=hidden, layers=layers, heads=4, kv_heads=2, intermediate=2 * hidden,
                          vision_embed=vision_embed, vision_depth=vision_depth, vision_heads=4)


def random_gme_embedder(config: Any = None, seed: int = 0, device: Any = None, dtype: Any = None,
                        min_image_tokens: int = 4, max_image_tokens: int = 16, **kwargs: Any):
    """A :class:`GmeQwen2VL` over random weights (``config`` default: tiny) and the real tokenizer."""
    from transformers import Qwen2VLForConditionalGeneration

    from gme_data.retrieval.gme_qwen2vl import GmeQwen2VL, resolve_device, resolve_dtype
    from gme_data.retrieval.qwen_tokenizer import build_qwen2vl_tokenizer

    torch.manual_seed(seed)
    device = resolve_device(device)
    with torch.device(device):  # initialise where it will run (a 2B model inits in seconds on a GPU)
        model = Qwen2VLForConditionalGeneration(config or tiny_qwen2vl_config())
    model.to(dtype=resolve_dtype(dtype, device))
    return GmeQwen2VL(model, build_qwen2vl_tokenizer(), name=kwargs.pop("name", "random-qwen2vl"),
                      min_image_tokens=min_image_tokens, max_image_tokens=max_image_tokens, **kwargs)



class GmeLoraTrainable:
    """:class:`~gme_data.training.trainer.TrainableModel` for GME: LoRA on a :class:`GmeQwen2VL`.

    ``embedder``: a loaded ``GmeQwen2VL`` (or pass ``base`` = name/folder to load one).
    ``base_spec``: how the saved manifest names the base (defaults to ``base``); with
    ``save_base=True`` the base weights are stored in the output folder instead (small models).
    ``init_from``: a saved ``gme-lora`` folder (or a checkpoint's ``trainable`` folder) whose adapter
    weights training continues from (GME's second stage, after re-mining with the trained model).
    """

    family = KIND

    def __init__(self, embedder: Any = None, base: str | None = None, *, r: int = 8, alpha: int = 16,
                 dropout: float = 0.0, target_modules: str | list[str] = LORA_TARGETS,
                 gradient_checkpointing: bool = True, device: Any = None, dtype: Any = None,
                 base_spec: str | None = None, save_base: bool = False, autocast: bool | None = None,
                 init_from: str | Path | None = None, **load_options: Any):
        from peft import LoraConfig, get_peft_model

        if embedder is None:
            if base is None:
                raise InvalidInputError("GmeLoraTrainable needs an embedder or a base checkpoint name/folder")
            from gme_data.retrieval.gme_qwen2vl import GmeQwen2VL

            embedder = GmeQwen2VL.from_pretrained(base, device=device, dtype=dtype, **load_options)
        self.embedder = embedder
        self.embedder.cache = None  # vectors change while training: never read or write the cache
        self.base_spec = base_spec or base
        self.base_name = embedder.name
        if not save_base and self.base_spec is None:
            raise InvalidInputError("GmeLoraTrainable: pass base_spec (how to load the base) or save_base=True")
        self._base_snapshot: Path | None = None
        if save_base:
            self._base_snapshot = Path(tempfile.mkdtemp(prefix="gme-base-"))
            embedder.model.save_pretrained(self._base_snapshot)
            # the tokenizer travels with the weights, so the folder loads without any fallback
            embedder.tokenizer.save_pretrained(self._base_snapshot)
        self.lora = {"r": r, "alpha": alpha, "dropout": dropout, "target_modules": target_modules}
        cfg = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=target_modules, bias="none")
        for p in embedder.model.parameters():
            p.requires_grad_(False)
        self.peft_model = get_peft_model(embedder.model, cfg)
        if gradient_checkpointing:
            ckpt_kwargs = {"use_reentrant": False}
            if hasattr(embedder.model, "activation_checkpointing_enable"):
                embedder.model.activation_checkpointing_enable(activation_checkpointing_kwargs=ckpt_kwargs)
            else:  # older transformers
                embedder.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=ckpt_kwargs)
        self.gradient_checkpointing = gradient_checkpointing
        if init_from is not None:  # continue from a saved model folder's (or checkpoint's) adapter
            src = Path(init_from)
            self.load_trainable(src / "adapter" if (src / "adapter").is_dir() else src)
        is_cuda = embedder.device.type == "cuda"
        self.autocast = is_cuda and embedder.dtype == torch.bfloat16 if autocast is None else autocast

    # ---------------------------------------------------------------- protocol
    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return [p for p in self.peft_model.parameters() if p.requires_grad]

    def prepare(self, rows: Sequence[TrainRow]) -> None:
        return None

    def prepare_chunk(self, items: Sequence[Item], role: str, instructions: Sequence[str | None],
                      keep_on_device: bool = False) -> list[tuple[list[int], Any]]:
        """Tokenise / preprocess once (GradCache runs each chunk twice): ``[(positions, GmeBatch)]`` per
        instruction group. Batches are parked on the CPU unless ``keep_on_device``."""
        groups: dict[str | None, list[int]] = {}
        for i, ins in enumerate(instructions):
            groups.setdefault(ins, []).append(i)
        out = []
        for ins, idx in groups.items():
            batch = self.embedder.prepare([items[i] for i in idx], role=role, instruction=ins)
            out.append((idx, batch if keep_on_device else batch.to("cpu")))
        return out

    def embed_prepared(self, prepared: list[tuple[list[int], Any]]) -> torch.Tensor:
        """Differentiable forward of a :meth:`prepare_chunk` result, rows back in input order."""
        parts, order = [], []
        dev = self.embedder.device
        for idx, batch in prepared:
            with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=self.autocast):
                parts.append(self.embedder.embed_tensors(batch.to(dev)).float())
            order.extend(idx)
        out = torch.cat(parts) if len(parts) > 1 else parts[0]
        if order != list(range(len(order))):
            inv = torch.empty(len(order), dtype=torch.long)
            inv[torch.tensor(order)] = torch.arange(len(order))
            out = out[inv.to(out.device)]
        return out

    def embed(self, items: Sequence[Item], role: str, instructions: Sequence[str | None]) -> torch.Tensor:
        return self.embed_prepared(self.prepare_chunk(items, role, instructions, keep_on_device=True))

    def set_train(self, mode: bool) -> None:
        self.embedder.model.train(mode)

    def as_embedder(self) -> Any:
        return self.embedder

    def save_trainable(self, path: Path) -> None:
        self.peft_model.save_pretrained(str(path))

    def load_trainable(self, path: Path) -> None:
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        f = Path(path) / "adapter_model.safetensors"
        if not f.is_file():
            raise InvalidInputError(f"{path}: no adapter_model.safetensors (not a LoRA checkpoint)")
        res = set_peft_model_state_dict(self.peft_model, load_file(str(f), device=str(self.embedder.device)))
        unexpected = getattr(res, "unexpected_keys", None)
        if unexpected:
            raise InvalidInputError(f"{f}: adapter keys do not fit this model: {unexpected[:3]}")

    def save(self, path: Path, extra: dict[str, Any] | None = None) -> None:
        path = Path(path)
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        self.save_trainable(path / "adapter")
        base_ref = self.base_spec
        if self._base_snapshot is not None:
            shutil.copytree(self._base_snapshot, path / "base")
            (path / "base").chmod(0o755)
            base_ref = "base"
        e = self.embedder
        manifest = {
            "kind": KIND, "format_version": 1, "base": base_ref, "base_in_folder": self._base_snapshot is not None,
            "base_name": self.base_name, "dim": e.dim, "position_mode": e.position_mode,
            "min_image_tokens": e.min_image_tokens, "max_image_tokens": e.max_image_tokens,
            "max_length": e.max_length, "lora": self.lora,
            "sha1": stream_digest(path / "adapter" / "adapter_model.safetensors", "sha1"), "trained": extra or {},
        }
        (path / MANIFEST).write_text(json.dumps(manifest, indent=1, default=str))

    def __del__(self) -> None:
        snap = getattr(self, "_base_snapshot", None)
        if snap is not None:
            shutil.rmtree(snap, ignore_errors=True)


def load_gme_lora_embedder(path: str | Path, device: Any = None, dtype: Any = None, merge: bool = True,
                           allow_download: bool = False, **options: Any) -> Any:
    """A saved ``gme-lora`` folder -> ``GmeQwen2VL`` with the adapter applied (merged unless ``merge=False``).
    ``options`` override the saved runtime settings (``position_mode``, ``max_image_tokens``, ...). A base
    named by hub id loads from the local Hugging Face cache only, unless ``allow_download``."""
    path = Path(path)
    with loading_model_folder(path):
        return _load_gme_lora_embedder(path, device, dtype, merge, allow_download, options)


def _load_gme_lora_embedder(path: Path, device: Any, dtype: Any, merge: bool, allow_download: bool,
                            options: dict[str, Any]) -> Any:
    from peft import PeftModel

    from gme_data.retrieval.gme_qwen2vl import GmeQwen2VL

    m = read_manifest(path)
    if m.get("kind") != KIND:
        raise InvalidInputError(f"{path}: manifest kind is {m.get('kind')!r}, expected {KIND!r}")
    if m.get("base_in_folder"):
        base = str(path / "base")
        if not (path / "base").is_dir() or (path / "base").is_symlink():
            raise InvalidInputError(f"{path}: manifest says the base is in the folder, but base/ is not a folder")
    else:
        base = m.get("base")
        if base is None:
            raise InvalidInputError(f"{path}: manifest names no base checkpoint")
        options = {**hub_options(base, allow_download), **options}
    weights = file_in_folder(path / "adapter", "adapter_model.safetensors", "LoRA weights")
    file_in_folder(path / "adapter", "adapter_config.json", "LoRA config")
    settings = {k: m[k] for k in ("position_mode", "min_image_tokens", "max_image_tokens", "max_length") if k in m}
    settings.update(options)
    emb = GmeQwen2VL.from_pretrained(base, device=device, dtype=dtype, **settings)
    peft_model = PeftModel.from_pretrained(emb.model, str(path / "adapter"))
    emb.model = (peft_model.merge_and_unload() if merge else peft_model.base_model.model).eval()
    sha = stream_digest(weights, "sha1")  # the weights on disk, not what the manifest claims
    emb.name = f"{m.get('base_name') or m.get('base')}+lora-{sha[:12]}"
    return emb
