"""Runtime profiles of the GME embedder: how :class:`~gme_data.retrieval.gme_qwen2vl.GmeQwen2VL` runs.

A profile fixes what changes vectors at inference time apart from the weights: the compute dtype,
how an over-long prompt is cut, whether images are pre-resized before Qwen2-VL's image processor,
and the visual-token budget. Reports name the profile beside every score.

- ``gme_data`` (the embedder's defaults, unchanged): bf16 on CUDA / fp32 on CPU; an over-long
  item keeps the end of its prompt (the text is shortened, the closing turn and ``<|endoftext|>``
  stay, so pooling stays on ``<|endoftext|>``); no pre-resize; 256..1280 image tokens.
- ``reference``: what GME's published inference code does, for parity with its scores: float16;
  the tokenised prompt is cut on the right at ``max_length`` = 1800 tokens, so an over-long input is
  pooled on its last kept content token; every image is first resized with PIL to sides that are
  multiples of 28 (pixel count kept within 4..16384 28x28 patches, aspect ratio at most 200, PIL's
  bicubic default) and only then handed to the processor; 256..1280 image tokens (model card).
- ``reference-mteb``: ``reference`` with the 4-token minimum of GME's MTEB wrapper.

Sources (facts read there; :data:`PROFILE_SOURCES`): the model card's ``gme_inference.py``
(``huggingface.co/Alibaba-NLP/gme-Qwen2-VL-2B-Instruct``; float16, ``min_image_tokens=256``,
``max_image_tokens=1280``, ``max_length=1800``, ``truncation=True`` with right padding, the PIL
``smart_resize`` pre-resize) and GME's MTEB wrapper, ``embeddings-benchmark/mteb`` at
``075873f9c954d29aac927782bd30219c5dbd84ce``, ``mteb/models/gme_models.py`` (the same, with
``min_image_tokens=4``).

fp16 on CPU: torch runs the tiny test model's float16 forward on CPU (the tests do), but slowly
and with float16's range; use ``reference`` on CUDA for real runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from PIL import Image

from gme_data.errors import InvalidInputError

#: How an over-long prompt is cut: keep its end (``keep-end``) or cut it on the right (``right``).
TRUNCATIONS = ("keep-end", "right")
#: Side multiple, pixel bounds (in 28x28 patches) and aspect-ratio cap of the reference pre-resize.
RESIZE_FACTOR = 28
RESIZE_MIN_PATCHES = 4
RESIZE_MAX_PATCHES = 16384
RESIZE_MAX_RATIO = 200

PROFILE_SOURCES: dict[str, str] = {
    "model card": "huggingface.co/Alibaba-NLP/gme-Qwen2-VL-2B-Instruct: gme_inference.py",
    "mteb wrapper": "embeddings-benchmark/mteb@075873f9c954d29aac927782bd30219c5dbd84ce:mteb/models/gme_models.py",
}


@dataclass(frozen=True)
class RuntimeProfile:
    """Inference settings that change GME vectors (besides weights, instruction and positions)."""

    name: str
    dtype: str | None  # "fp16" / "bf16" / "fp32"; None: the embedder's default for the device
    truncation: str
    pre_resize: bool
    min_image_tokens: int = 256
    max_image_tokens: int = 1280
    max_length: int = 1800
    source: str = ""

    def __post_init__(self) -> None:
        if self.truncation not in TRUNCATIONS:
            raise InvalidInputError(f"profile {self.name!r}: truncation must be one of {TRUNCATIONS}, "
                                    f"got {self.truncation!r}")
        if not (0 < self.min_image_tokens <= self.max_image_tokens):
            raise InvalidInputError(f"profile {self.name!r}: need 0 < min_image_tokens <= max_image_tokens, got "
                                    f"{self.min_image_tokens}, {self.max_image_tokens}")
        if self.max_length < 16:
            raise InvalidInputError(f"profile {self.name!r}: max_length must be at least 16, got {self.max_length}")

    def with_min_image_tokens(self, n: int) -> RuntimeProfile:
        """The same profile with another minimum of image tokens (256 model card, 4 MTEB wrapper)."""
        return replace(self, min_image_tokens=int(n), name=f"{self.name.split('[')[0]}[min_image_tokens={n}]")

    def embedder_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :class:`~gme_data.retrieval.gme_qwen2vl.GmeQwen2VL` for this profile."""
        return {"min_image_tokens": self.min_image_tokens, "max_image_tokens": self.max_image_tokens,
                "max_length": self.max_length, "truncation": self.truncation,
                "pre_resize": reference_pre_resize if self.pre_resize else None, "runtime_profile": self.name}

    def describe(self) -> str:
        """One line for reports: ``name (dtype, truncation, pre-resize, image tokens, max length)``."""
        return (f"{self.name} (dtype {self.dtype or 'device default'}, truncation {self.truncation} at "
                f"{self.max_length}, {'PIL pre-resize to x28' if self.pre_resize else 'no pre-resize'}, "
                f"image tokens {self.min_image_tokens}..{self.max_image_tokens})")


PROFILES: dict[str, RuntimeProfile] = {
    "gme_data": RuntimeProfile("gme_data", None, "keep-end", False, source="gme_data defaults"),
    "reference": RuntimeProfile("reference", "fp16", "right", True, source=PROFILE_SOURCES["model card"]),
    "reference-mteb": RuntimeProfile("reference-mteb", "fp16", "right", True, min_image_tokens=4,
                                     source=PROFILE_SOURCES["mteb wrapper"]),
}
DEFAULT_PROFILE = "gme_data"


def get_profile(profile: str | RuntimeProfile | None = None, min_image_tokens: int | None = None) -> RuntimeProfile:
    """A profile by name (``gme_data``, ``reference``, ``reference-mteb``), optionally with another
    minimum of image tokens."""
    if isinstance(profile, RuntimeProfile):
        prof = profile
    else:
        key = DEFAULT_PROFILE if profile is None else str(profile).strip().lower()
        if key not in PROFILES:
            raise InvalidInputError(f"unknown runtime profile {profile!r}; expected one of {sorted(PROFILES)}")
        prof = PROFILES[key]
    if min_image_tokens is not None and min_image_tokens != prof.min_image_tokens:
        prof = prof.with_min_image_tokens(min_image_tokens)
    return prof


def smart_resize_dims(height: int, width: int, factor: int = RESIZE_FACTOR,
                      min_pixels: int = RESIZE_MIN_PATCHES * RESIZE_FACTOR ** 2,
                      max_pixels: int = RESIZE_MAX_PATCHES * RESIZE_FACTOR ** 2,
                      max_ratio: int = RESIZE_MAX_RATIO) -> tuple[int, int]:
    """(height, width): each side a multiple of ``factor``, area within ``min_pixels..max_pixels``,
    aspect ratio kept as closely as the grid allows and capped at ``max_ratio``."""
    if height <= 0 or width <= 0:
        raise InvalidInputError(f"image size must be positive, got {width}x{height}")
    h = max(factor, round(height / factor) * factor)
    w = max(factor, round(width / factor) * factor)
    if h * w > max_pixels:
        scale = math.sqrt(height * width / max_pixels)
        h = max(factor, math.floor(height / scale / factor) * factor)
        w = max(factor, math.floor(width / scale / factor) * factor)
    elif h * w < min_pixels:
        scale = math.sqrt(min_pixels / (height * width))
        h = math.ceil(height * scale / factor) * factor
        w = math.ceil(width * scale / factor) * factor
    if max(h, w) / min(h, w) > max_ratio:
        if h > w:
            h = w * max_ratio
        else:
            w = h * max_ratio
    return h, w


def reference_pre_resize(image: Image.Image) -> Image.Image:
    """The reference code's step before the processor: RGB, then a PIL resize to :func:`smart_resize_dims`."""
    rgb = image.convert("RGB")
    h, w = smart_resize_dims(rgb.height, rgb.width)
    if (w, h) == rgb.size:
        return rgb
    return rgb.resize((w, h), Image.Resampling.BICUBIC)


def load_gme(name_or_path: str | Path, profile: str | RuntimeProfile | None = None, *,
             min_image_tokens: int | None = None, device: Any = None, **kwargs: Any):
    """:meth:`GmeQwen2VL.from_pretrained` under a runtime profile (its dtype, budget, truncation, pre-resize)."""
    from gme_data.retrieval.gme_qwen2vl import GmeQwen2VL

    prof = get_profile(profile, min_image_tokens)
    owned = sorted(set(kwargs) & {*prof.embedder_kwargs(), "dtype"})
    if owned:
        raise InvalidInputError(f"runtime profile {prof.name!r} sets {', '.join(owned)}; pass another profile "
                                "(or min_image_tokens=) instead")
    return GmeQwen2VL.from_pretrained(name_or_path, device=device, dtype=prof.dtype, **prof.embedder_kwargs(),
                                      **kwargs)
