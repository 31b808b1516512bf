"""CLIP-family embedders (``CLIPModel``, ``SiglipModel``) on transformers' own classes and processors.

Any CLIP or SigLIP checkpoint loads by hub id (``openai/clip-vit-large-patch14``,
``google/siglip-so400m-patch14-384``) or local folder; no remote code is run. Vectors:

- text: ``get_text_features`` on the checkpoint's tokenizer output, truncated to the model's text
  limit (CLIP 77 tokens, SigLIP 64); every truncated text is counted (``.truncated_texts``) and
  logged. CLIP batches are right-padded with an attention mask (pooling at the first end-of-text
  token, so padding changes nothing); SigLIP texts are padded to ``max_length`` without a mask, as
  SigLIP was trained and as its model card shows (pooling at the last position).
- image: ``get_image_features`` on the checkpoint's own image processor (PIL backend).
- fused (text + image): UniIR's CLIP-SF score fusion,
  ``normalize(normalize(text_vec) + normalize(image_vec))``.

Instructions are ignored: CLIP models were not trained with them, so mixing them into the text would
only shift the vectors. The first encode with a task instruction logs that once per embedder.

Names: ``clip:<id or folder>`` / ``siglip:<id or folder>``, so per-embedder settings keyed by name
(the image-text filter threshold, see :data:`FAMILY_IMAGE_SCORE_THRESHOLDS`) follow the family.

Image-text threshold (:attr:`ClipFamilyEmbedder.image_score_threshold`, what the ``fused_queries`` and
``filtered_samples`` assets use for such an embedder): CLIP 0.2, GME's published cut (ViT-L/14). SigLIP
was trained with a sigmoid, ``p(match) = sigmoid(scale * cosine + bias)``, so the checkpoint itself says
where a pair becomes more likely a match than not: ``cosine = -bias / scale``. That point, read from the
loaded weights, is SigLIP's default. It is not measured against labelled pairs here (no SigLIP weights
can be loaded offline). Without a loaded checkpoint (the library's name-keyed table)
SigLIP falls back to 0.1, an unmeasured placeholder.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gme_data.errors import InvalidInputError
from gme_data.records import Item
from gme_data.retrieval.base import Embedder
from gme_data.retrieval.instructions import CANDIDATE_INSTRUCTION

logger = logging.getLogger(__name__)

FAMILIES = ("clip", "siglip")
#: Name prefixes a user may write to force the family of a hub id (``clip:org/model``).
PREFIXES = tuple(f"{f}:" for f in FAMILIES)
#: Image-text score cut per family when no checkpoint is loaded (cosine of the normalised vectors).
#: CLIP: 0.2, GME's published cut. SigLIP: 0.1, an unmeasured placeholder; a loaded SigLIP uses its own
#: sigmoid's 50% point ``-bias / scale`` instead (see the module docstring).
FAMILY_IMAGE_SCORE_THRESHOLDS: dict[str, float] = {"clip": 0.2, "siglip": 0.1}
FUSION = "clip-sf"


def _model_type(folder: Path) -> str | None:
    try:
        cfg = json.loads((folder / "config.json").read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return cfg.get("model_type") if isinstance(cfg, dict) else None


def clip_family_of(name_or_path: Any) -> str | None:
    """``"clip"`` / ``"siglip"`` when ``name_or_path`` names a CLIP-family checkpoint, else None.

    A local folder is judged by its ``config.json`` ``model_type``; a hub id by an explicit
    ``clip:`` / ``siglip:`` prefix, else by ``siglip`` / ``clip`` in its name (no network access).
    """
    if name_or_path is None:
        return None
    name = str(name_or_path)
    for family in FAMILIES:
        if name.startswith(f"{family}:"):
            return family
    folder = Path(name).expanduser()
    if folder.is_dir():
        mt = _model_type(folder)
        return mt if mt in FAMILIES else None
    low = name.lower()
    if name.count("/") == 1 and not name.startswith(("/", ".", "~")):
        if "siglip" in low:
            return "siglip"
        if "clip" in low:
            return "clip"
    return None


def _features(out: Any) -> torch.Tensor:
    """A ``get_*_features`` result as a tensor (transformers 5 returns an output with ``pooler_output``)."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output


class ClipFamilyEmbedder(Embedder):
    """A transformers ``CLIPModel`` / ``SiglipModel`` behind the embedder protocol (see module docstring)."""

    modalities = ("text", "image", "fused")
    default_batch_size = 32

    def __init__(self, model: torch.nn.Module, tokenizer: Any, image_processor: Any, *, family: str,
                 name: str, max_length: int | None = None, cache_dir: str | Path | None = None):
        super().__init__(cache_dir)
        if family not in FAMILIES:
            raise InvalidInputError(f"family must be one of {FAMILIES}, got {family!r}")
        if not (hasattr(model, "get_text_features") and hasattr(model, "get_image_features")):
            raise InvalidInputError(f"model must be a transformers CLIPModel or SiglipModel, got {type(model).__name__}")
        self.model = model.eval()
        self.tokenizer, self.image_processor = tokenizer, image_processor
        self.family, self.name = family, name
        cfg = model.config
        limit = int(cfg.text_config.max_position_embeddings)
        tok_limit = getattr(tokenizer, "model_max_length", None)
        if isinstance(tok_limit, int) and 0 < tok_limit < limit:
            limit = tok_limit
        if max_length is not None and (not isinstance(max_length, int) or not 2 <= max_length <= limit):
            raise InvalidInputError(f"{name}: max_length must be an int in [2, {limit}], got {max_length!r}")
        self.max_length = max_length or limit
        if family == "clip":
            self.dim = int(cfg.projection_dim)
        else:
            self.dim = int(getattr(cfg.text_config, "projection_size", None) or cfg.text_config.hidden_size)
        if family == "clip" and tokenizer.pad_token_id is None:
            raise InvalidInputError(f"{name}: the tokenizer has no pad token")
        #: texts cut to ``max_length`` tokens so far (also logged as a warning per batch)
        self.truncated_texts = 0
        self.runtime_profile = FUSION
        self.fusion = FUSION
        self._told_instructions = False

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    @property
    def settings(self) -> dict[str, Any]:
        # every key is a load option (trained adapters re-load their base with these); the fusion is
        # fixed for the family and named by ``runtime_profile``
        return {"dtype": str(self.dtype).replace("torch.", ""), "max_length": self.max_length}

    @property
    def image_score_threshold(self) -> float:
        """The default image-text cut: CLIP 0.2 (GME's); SigLIP its sigmoid's 50% point (the family's
        placeholder when the checkpoint has no usable scale / bias)."""
        point = self.match_threshold if self.family == "siglip" else None
        if point is not None and -1.0 < point < 1.0:
            return point
        return FAMILY_IMAGE_SCORE_THRESHOLDS[self.family]

    @property
    def match_threshold(self) -> float | None:
        """SigLIP: the cosine where the checkpoint's sigmoid gives 0.5 (``-bias / exp(logit_scale)``)."""
        bias = getattr(self.model, "logit_bias", None)
        scale = getattr(self.model, "logit_scale", None)
        if bias is None or scale is None:
            return None
        return float(-bias.detach().float().reshape(-1)[0] / scale.detach().float().exp().reshape(-1)[0])

    # ------------------------------------------------------------------ pieces
    def _token_batch(self, texts: list[str]) -> dict[str, torch.Tensor]:
        too_long = sum(len(self.tokenizer(t)["input_ids"]) > self.max_length for t in texts)
        if too_long:
            self.truncated_texts += too_long
            logger.warning("%s: %d text(s) longer than %d tokens truncated (%d so far)", self.name, too_long,
                           self.max_length, self.truncated_texts)
        if self.family == "siglip":
            enc = self.tokenizer(texts, padding="max_length", truncation=True, max_length=self.max_length,
                                 return_tensors="pt")
            return {"input_ids": enc["input_ids"]}
        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}

    def text_features(self, texts: list[str]) -> torch.Tensor:
        """Raw (unnormalised) text features ``[n, dim]`` in float32."""
        batch = {k: v.to(self.device) for k, v in self._token_batch(texts).items()}
        with torch.inference_mode():
            return _features(self.model.get_text_features(**batch)).float()

    def image_features(self, items: list[Item]) -> torch.Tensor:
        """Raw (unnormalised) image features ``[n, dim]`` in float32."""
        images = [it.load_image() for it in items]
        pixels = self.image_processor(images=images, return_tensors="pt")["pixel_values"]
        with torch.inference_mode():
            return _features(self.model.get_image_features(pixel_values=pixels.to(self.device, self.dtype))).float()

    # ------------------------------------------------------------------ protocol
    def _embed_batch(self, items: list[Item], role: str, instruction: str) -> np.ndarray:
        if role == "query" and instruction != CANDIDATE_INSTRUCTION and not self._told_instructions:
            self._told_instructions = True
            logger.info("%s: task instructions are ignored by CLIP-family models (e.g. %r)", self.name,
                        instruction[:80])
        out = torch.zeros((len(items), self.dim), dtype=torch.float32, device=self.device)
        with_text = [i for i, it in enumerate(items) if it.text is not None]
        with_image = [i for i, it in enumerate(items) if it.image is not None]
        text = img = None
        if with_text:
            text = torch.nn.functional.normalize(self.text_features([items[i].text for i in with_text]), dim=-1)
            out[with_text] = text
        if with_image:
            img = torch.nn.functional.normalize(self.image_features([items[i] for i in with_image]), dim=-1)
            out[with_image] = img
        fused = [i for i, it in enumerate(items) if it.text is not None and it.image is not None]
        if fused:  # CLIP-SF: normalize(normalize(text) + normalize(image))
            t = text[[with_text.index(i) for i in fused]]
            v = img[[with_image.index(i) for i in fused]]
            out[fused] = torch.nn.functional.normalize(t + v, dim=-1)
        return out.cpu().numpy()

    def _cost(self, item: Item) -> float:
        return (1e6 if item.image is not None else 0.0) + len(item.text or "")

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, device: Any = None, dtype: Any = None, *,
                        family: str | None = None, max_length: int | None = None,
                        cache_dir: str | Path | None = None, hf_cache_dir: str | Path | None = None,
                        **hf_kwargs: Any) -> ClipFamilyEmbedder:
        """Load a CLIP / SigLIP checkpoint (hub id, ``clip:``/``siglip:``-prefixed id, or local folder).

        ``cache_dir`` is the embedding cache; ``hf_cache_dir`` and other keyword arguments
        (``revision``, ``local_files_only``, ``token``...) go to transformers. ``dtype``: None = fp32 on
        CPU, bf16 on CUDA (or ``fp32`` / ``bf16`` / ``fp16``).
        """
        from transformers import AutoImageProcessor, AutoTokenizer, CLIPModel, SiglipModel

        from gme_data.retrieval.gme_qwen2vl import resolve_device, resolve_dtype

        raw = str(name_or_path)
        family = family or clip_family_of(raw)
        if family not in FAMILIES:
            raise InvalidInputError(f"{raw!r} is not a CLIP-family checkpoint (family {family!r}; "
                                    f"choose one of {FAMILIES})")
        repo = raw.split(":", 1)[1] if raw.startswith(PREFIXES) else raw
        device = resolve_device(device)
        torch_dtype = resolve_dtype(dtype, device)
        kwargs = dict(hf_kwargs)
        if hf_cache_dir is not None:
            kwargs["cache_dir"] = str(hf_cache_dir)
        local = Path(repo).expanduser()
        weights_id = None
        if local.exists() and not local.is_dir():
            raise InvalidInputError(f"model path {raw!r} is a file; expected a checkpoint folder or a hub id")
        if local.is_dir():
            model_type = _model_type(local)
            if model_type != family:
                raise InvalidInputError(f"model folder {local}: model_type is {model_type!r}, expected {family!r}")
            kwargs = {k: v for k, v in kwargs.items() if k not in ("cache_dir", "revision")}
            kwargs["local_files_only"] = True
            source = str(local)
            from gme_data.retrieval.weights_hash import folder_digest

            weights_id = folder_digest(local)
        elif repo.startswith(("/", ".", "~")) or repo.count("/") > 1:
            raise InvalidInputError(f"model folder not found: {raw!r} (no such directory)")
        else:
            source = repo
        model_cls = CLIPModel if family == "clip" else SiglipModel
        tok_kwargs = {k: v for k, v in kwargs.items() if k in ("revision", "token", "local_files_only", "cache_dir")}
        try:
            model = model_cls.from_pretrained(source, dtype=torch_dtype, **kwargs)
            tokenizer = AutoTokenizer.from_pretrained(source, **tok_kwargs)
            processor = AutoImageProcessor.from_pretrained(source, backend="pil", **tok_kwargs)
        except (OSError, ValueError) as exc:
            raise InvalidInputError(f"cannot load {family} checkpoint {raw!r}: {exc}") from exc
        model.to(device)
        emb = cls(model, tokenizer, processor, family=family, name=f"{family}:{repo}", max_length=max_length,
                  cache_dir=cache_dir)
        emb.weights_id = weights_id
        if family == "siglip" and emb.match_threshold is not None:
            logger.info("%s: the checkpoint's 50%% match point is cosine %.3f (-bias/scale); image-text "
                        "threshold %.3f", emb.name, emb.match_threshold, emb.image_score_threshold)
        return emb
