"""Qwen2-VL configurations for random-weight models: GME-2B's real shape and a tiny test shape.

Random weights exercise the exact code path of a real checkpoint (same classes, same vocabulary
size, same vision patching) without any download: throughput benchmarks use the 2B shape, tests
the tiny one.
"""

from __future__ import annotations

from typing import Any

import torch

from gme_data.errors import InvalidInputError

VOCAB_SIZE = 151936  # Qwen2-VL's embedding rows (covers the special tokens up to 151656)


def qwen2vl_2b_config():
    """The architecture of Qwen2-VL-2B / gme-Qwen2-VL-2B (hidden 1536, 28 layers, vision depth 32)."""
    from transformers import Qwen2VLConfig

    return Qwen2VLConfig(
        text_config=dict(vocab_size=VOCAB_SIZE, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                         num_attention_heads=12, num_key_value_heads=2, max_position_embeddings=32768,
                         rms_norm_eps=1e-6, rope_parameters={"rope_type": "default", "rope_theta": 1e6,
                                                             "mrope_section": [16, 24, 24]}),
        vision_config=dict(depth=32, embed_dim=1280, hidden_size=1536, num_heads=16, mlp_ratio=4, patch_size=14,
                           spatial_merge_size=2, temporal_patch_size=2),
        tie_word_embeddings=True,
    )


def tiny_qwen2vl_config(hidden: int = 64, layers: int = 2, vision_depth: int = 2):
    """A tiny Qwen2-VL (real vocabulary size, real patching) for CPU tests."""
    from transformers import Qwen2VLConfig

    heads = 4
    if hidden % (2 * heads):
        raise InvalidInputError(f"hidden must be a multiple of {2 * heads}, got {hidden}")
    half = hidden // heads // 2
    section = [half - 2 * (half // 3), half // 3, half // 3]
    return Qwen2VLConfig(
        text_config=dict(vocab_size=VOCAB_SIZE, hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=2,
                         max_position_embeddings=4096, rms_norm_eps=1e-6,
                         rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": section}),
        vision_config=dict(depth=vision_depth, embed_dim=32, hidden_size=hidden, num_heads=4, mlp_ratio=2,
                           patch_size=14, spatial_merge_size=2, temporal_patch_size=2),
    )


def random_qwen2vl(config: Any = "tiny", seed: int = 0, dtype: torch.dtype = torch.float32,
                   device: str = "cpu", attn_implementation: str = "sdpa", lm_head: bool = False):
    """A ``Qwen2VLModel`` with random weights; ``config`` is "tiny", "2b" or a ``Qwen2VLConfig``.

    ``lm_head=True`` gives a ``Qwen2VLForConditionalGeneration`` instead (the layout published GME
    checkpoints are saved in; its ``.model`` is the same ``Qwen2VLModel``, same weights for a seed).
    """
    from transformers import Qwen2VLForConditionalGeneration, Qwen2VLModel

    if isinstance(config, str):
        builders = {"tiny": tiny_qwen2vl_config, "2b": qwen2vl_2b_config}
        if config not in builders:
            raise InvalidInputError(f"unknown config {config!r}; expected one of {sorted(builders)}")
        config = builders[config]()
    config._attn_implementation = attn_implementation
    torch.manual_seed(seed)
    with torch.device(device):
        model = Qwen2VLForConditionalGeneration(config) if lm_head else Qwen2VLModel(config)
    return model.to(dtype).eval()
