"""The offline Qwen2-VL tokenizer reproduces tiktoken over the real Qwen2 ranks, special ids included."""

from __future__ import annotations

import unicodedata

from gme_data.retrieval.gme_qwen2vl import gme_prompt
from gme_data.retrieval.qwen_tokenizer import SPECIAL_TOKENS, tiktoken_encoding

TEXTS = [
    "A man riding a horse on the beach at sunset.",
    "What is 12345 + 678? It's café naïve — 中文测试 🙂\n\n  indented\tTAB",
    "e\u0301 composed by NFC; 'll 've 're 's",
]


def _tiktoken_ids(prompt: str) -> list[int]:
    return tiktoken_encoding().encode(unicodedata.normalize("NFC", prompt), allowed_special="all")


def test_special_tokens_have_real_ids(qwen_tokenizer):
    for token, token_id in SPECIAL_TOKENS.items():
        assert qwen_tokenizer.convert_tokens_to_ids(token) == token_id
        assert qwen_tokenizer(token, add_special_tokens=False)["input_ids"] == [token_id]
    assert len(qwen_tokenizer) == 151657
    assert qwen_tokenizer.pad_token_id == 151643


def test_plain_text_matches_tiktoken(qwen_tokenizer):
    for text in TEXTS:
        assert qwen_tokenizer(text, add_special_tokens=False)["input_ids"] == _tiktoken_ids(text)
    assert qwen_tokenizer.decode(qwen_tokenizer(TEXTS[1], add_special_tokens=False)["input_ids"]) == TEXTS[1]


def test_text_image_and_fused_prompts_match_tiktoken(qwen_tokenizer):
    n_pad = 37
    for text, has_image in [(TEXTS[0], False), (None, True), (TEXTS[1], True)]:
        prompt = gme_prompt("Find an image that matches the given text.", text, has_image)
        expanded = prompt.replace("<|image_pad|>", "<|image_pad|>" * n_pad)
        ids = qwen_tokenizer(expanded, add_special_tokens=False)["input_ids"]
        assert ids == _tiktoken_ids(expanded)
        assert ids.count(SPECIAL_TOKENS["<|image_pad|>"]) == (n_pad if has_image else 0)
        assert ids[0] == SPECIAL_TOKENS["<|im_start|>"] and ids[-1] == SPECIAL_TOKENS["<|endoftext|>"]
