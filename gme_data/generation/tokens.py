"""Prompt token counts before a request is sent (for budget reservations and run estimates).

Which tokenizer counts a chat request depends on the model (:func:`prompt_counter`):

* ``local`` backend: the GGUF's own vocabulary, read by llama.cpp (``vocab_only``), over the
  ChatML text the server renders (``<|im_start|>role\\n...<|im_end|>\\n`` + the assistant prefix);
* a model name containing ``qwen``: Qwen2's BPE (the offline ``qwen.tiktoken`` ranks of
  :mod:`gme_data.retrieval.qwen_tokenizer`) over the same ChatML text;
* OpenAI models (``gpt-*``, ``o1``/``o3``/``o4``...): tiktoken's encoding for the model, when its
  BPE file is available (tiktoken downloads it once; offline it needs ``TIKTOKEN_CACHE_DIR``),
  plus 3 tokens per message and 3 for the reply prefix (OpenAI's documented chat overhead);
* otherwise (and for OpenAI models when tiktoken has no file): the **fallback**, one token per
  3 characters of message text (English BPE averages about 4; 3 errs towards reserving more)
  plus 4 tokens per message.

Images count :data:`IMAGE_TOKENS` each (OpenAI's high-detail price of a 768 px image: 85 + 4 x 170).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

#: Tokens charged per inline image (OpenAI high detail, 768 x 768: 85 base + 4 tiles x 170).
IMAGE_TOKENS = 765
#: Fallback: characters per token and tokens of chat framing per message.
FALLBACK_CHARS_PER_TOKEN = 3.0
FALLBACK_TOKENS_PER_MESSAGE = 4
_OPENAI_MODEL = re.compile(r"^(gpt-|o\d|chatgpt|text-embedding|ft:gpt)", re.IGNORECASE)

Counter = Callable[[list[dict[str, Any]]], int]


def _parts(messages: list[dict[str, Any]]) -> tuple[list[tuple[str, str]], int]:
    """(role, text) per message and the number of images."""
    out: list[tuple[str, str]] = []
    images = 0
    for msg in messages:
        content = msg.get("content")
        if isinstance(content, list):
            text = "".join(p.get("text", "") for p in content if p.get("type") == "text")
            images += sum(1 for p in content if p.get("type") == "image_url")
        else:
            text = content or ""
        out.append((str(msg.get("role", "user")), text))
    return out, images


def chatml(messages: list[dict[str, Any]]) -> str:
    """The ChatML text a llama.cpp / Qwen server feeds the model for ``messages`` (images left out)."""
    parts, _ = _parts(messages)
    body = "".join(f"<|im_start|>{role}\n{text}<|im_end|>\n" for role, text in parts)
    return body + "<|im_start|>assistant\n"


def fallback_count(messages: list[dict[str, Any]]) -> int:
    parts, images = _parts(messages)
    text = sum(math.ceil(len(t) / FALLBACK_CHARS_PER_TOKEN) for _, t in parts)
    return text + FALLBACK_TOKENS_PER_MESSAGE * len(parts) + 3 + IMAGE_TOKENS * images


@lru_cache(maxsize=4)
def _gguf_vocab(path: str) -> Any:
    import llama_cpp

    return llama_cpp.Llama(model_path=path, vocab_only=True, verbose=False)


def gguf_counter(path: str) -> Counter:
    """Counts with the GGUF's vocabulary over ChatML (as llama.cpp's server renders ChatML models)."""
    vocab = _gguf_vocab(path)

    def count(messages: list[dict[str, Any]]) -> int:
        return len(vocab.tokenize(chatml(messages).encode(), add_bos=False, special=True))
    return count


def qwen_counter() -> Counter:
    from gme_data.retrieval.qwen_tokenizer import tiktoken_encoding

    enc = tiktoken_encoding()

    def count(messages: list[dict[str, Any]]) -> int:
        _, images = _parts(messages)
        return len(enc.encode(chatml(messages), allowed_special="all")) + IMAGE_TOKENS * images
    return count


def _openai_encoding(model: str) -> Any | None:
    try:
        import tiktoken

        try:
            return tiktoken.encoding_for_model(model)
        except KeyError:
            return tiktoken.get_encoding("o200k_base")
    except Exception:  # noqa: BLE001 - no BPE file offline: the fallback is documented
        return None


def prompt_counter(backend: str, model: str, gguf_path: str = "") -> tuple[str, Counter]:
    """(name of the tokenizer, a function counting the prompt tokens of chat messages)."""
    if backend == "local" and gguf_path:
        return "gguf-vocab", gguf_counter(gguf_path)
    if "qwen" in model.lower():
        return "qwen2-bpe", qwen_counter()
    if _OPENAI_MODEL.match(model):
        enc = _openai_encoding(model)
        if enc is not None:
            def count(messages: list[dict[str, Any]]) -> int:
                parts, images = _parts(messages)
                return sum(3 + len(enc.encode(t, disallowed_special=())) for _, t in parts) + 3 \
                    + IMAGE_TOKENS * images
            return f"tiktoken:{enc.name}", count
    return f"fallback:{FALLBACK_CHARS_PER_TOKEN:g}-chars-per-token", fallback_count
