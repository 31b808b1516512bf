"""Runtime profiles: the ``reference`` parity mode (fp16, right truncation, PIL pre-resize, selectable image
budget) on the tiny random Qwen2-VL in float16 on CPU, and the unchanged ``gme_data`` profile."""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from gme_data.errors import InvalidInputError, InvalidItemError
from gme_data.records import Item
from gme_data.retrieval.gme_profiles import (
    PROFILES,
    get_profile,
    reference_pre_resize,
    smart_resize_dims,
)
from gme_data.retrieval.gme_qwen2vl import GmeQwen2VL

INSTR = "Find an image that matches the given caption."


def test_profiles_hold_the_reference_values() -> None:
    ref, mteb, ours = PROFILES["reference"], PROFILES["reference-mteb"], PROFILES["gme_data"]
    assert (ref.dtype, ref.truncation, ref.pre_resize, ref.max_length) == ("fp16", "right", True, 1800)
    assert (ref.min_image_tokens, ref.max_image_tokens, mteb.min_image_tokens) == (256, 1280, 4)
    assert "gme_inference.py" in ref.source and "075873f9c954d29aac927782bd30219c5dbd84ce" in mteb.source
    assert (ours.dtype, ours.truncation, ours.pre_resize, ours.min_image_tokens) == (None, "keep-end", False, 256)
    four = get_profile("reference", min_image_tokens=4)
    assert four.min_image_tokens == 4 and four.name == "reference[min_image_tokens=4]" and four.dtype == "fp16"
    assert get_profile() is ours and get_profile(" Reference ") is ref
    assert "fp16" in ref.describe() and "right at 1800" in ref.describe()
    with pytest.raises(InvalidInputError, match="unknown runtime profile 'fast'"):
        get_profile("fast")
    with pytest.raises(InvalidInputError, match="truncation"):
        replace(ref, truncation="left")


@pytest.mark.parametrize(("hw", "want"), [
    ((100, 50), (112, 56)),  # rounded to the nearest multiple of 28
    ((10, 10), (56, 56)),  # raised to the 4-patch minimum
    ((28, 28 * 300), (28, 28 * 200)),  # aspect ratio capped at 200
])
def test_smart_resize_dims(hw: tuple[int, int], want: tuple[int, int]) -> None:
    assert smart_resize_dims(*hw) == want


def test_smart_resize_dims_bounds_and_errors() -> None:
    h, w = smart_resize_dims(5000, 4000)  # 25.5 M pixels > 16384 patches: scaled down
    assert h % 28 == 0 and w % 28 == 0 and h * w <= 16384 * 28 * 28 and abs(h / w - 1.25) < 0.02
    with pytest.raises(InvalidInputError, match="positive"):
        smart_resize_dims(0, 10)


def test_pre_resize_makes_rgb_multiples_of_28() -> None:
    img = Image.new("L", (61, 45), 128)
    out = reference_pre_resize(img)
    assert out.mode == "RGB" and out.size == (56, 56)
    same = Image.new("RGB", (56, 84), "red")
    assert reference_pre_resize(same).size == (56, 84)


@pytest.fixture(scope="module")
def fp16_model(tiny_model):
    return copy.deepcopy(tiny_model).half()


def _emb(model, tokenizer, profile: str, max_length: int = 1800) -> GmeQwen2VL:
    prof = replace(get_profile(profile, min_image_tokens=4), max_image_tokens=64, max_length=max_length)
    return GmeQwen2VL(model, tokenizer, name=f"tiny-{profile}", **prof.embedder_kwargs())


def test_reference_profile_runs_in_fp16_on_cpu(fp16_model, qwen_tokenizer) -> None:
    emb = _emb(fp16_model, qwen_tokenizer, "reference")
    assert emb.dtype == torch.float16 and emb.runtime_profile == "reference[min_image_tokens=4]"
    img = Image.new("RGB", (61, 45), (10, 200, 30))
    items = [Item(text="a green rectangle"), Item(image=img), Item(text="what colour is it?", image=img)]
    vecs = emb.encode(items, role="query", instruction=INSTR, batch_size=3, show_progress=False)
    assert vecs.shape == (3, emb.dim) and np.isfinite(vecs).all()
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-3)
    # batch-size independence holds in fp16 too (up to fp16 rounding)
    one = emb.encode(items[2:], role="query", instruction=INSTR, batch_size=1, show_progress=False)
    assert float(one[0] @ vecs[2]) > 0.99


def test_right_truncation_pools_on_a_content_token(fp16_model, tiny_model, qwen_tokenizer) -> None:
    long = Item(text="the quick brown fox jumps over the lazy dog " * 30, id="long")
    ref = _emb(fp16_model, qwen_tokenizer, "reference", max_length=40)
    ids = ref.item_ids(long, INSTR)
    untruncated = _emb(fp16_model, qwen_tokenizer, "reference", max_length=4000).item_ids(long, INSTR)
    assert len(ids) == 40 and ids == untruncated[:40]  # a plain cut on the right
    batch = ref.prepare([long], "query", INSTR)
    last = int(batch.last_index[0])
    assert last == 39 and int(batch.input_ids[0, last]) not in (ref.eot_id, qwen_tokenizer.convert_tokens_to_ids(
        "<|im_end|>"))  # pooled on the text itself
    # the gme_data profile keeps the end instead: pooled on <|endoftext|>
    ours = GmeQwen2VL(tiny_model, qwen_tokenizer, min_image_tokens=4, max_image_tokens=64, max_length=40)
    kept = ours.item_ids(long, INSTR)
    assert len(kept) <= 40 and kept[-1] == ours.eot_id and ours.settings.keys() == {
        "position_mode", "min_image_tokens", "max_image_tokens", "max_length", "dtype"}
    assert "truncation=right" in ref.cache_key and "pre_resize=reference_pre_resize" in ref.cache_key
    # a cut that would fall inside the image tokens is refused, naming the item
    img_item = Item(text="look " * 40, image=Image.new("RGB", (300, 300), "blue"), id="pic")
    tight = _emb(fp16_model, qwen_tokenizer, "reference", max_length=30)
    with pytest.raises(InvalidItemError, match="pic.*image tokens"):
        tight.prepare([img_item], "query", INSTR)


def test_pre_resize_hook_feeds_the_processor(fp16_model, qwen_tokenizer) -> None:
    ref = _emb(fp16_model, qwen_tokenizer, "reference")
    plain = _emb(fp16_model, qwen_tokenizer, "gme_data")
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 255, (333, 500, 3), dtype=np.uint8))  # above the 64-token budget
    item = Item(image=img, id="noise")
    pv, grid = ref._image_inputs(item)
    want = ref.processor(images=[reference_pre_resize(img)], return_tensors="pt")
    assert torch.equal(pv, want["pixel_values"]) and torch.equal(grid, want["image_grid_thw"][0])
    pv_plain, _ = plain._image_inputs(item)
    # same grid, but the reference resamples twice (to 504x336, then into the budget): other pixels
    assert pv.shape == pv_plain.shape and not torch.equal(pv, pv_plain)


def test_load_embedder_under_a_profile(tiny_model, qwen_tokenizer, tmp_path) -> None:
    from gme_data.retrieval import load_embedder

    folder = tmp_path / "tiny-gme"
    tiny_model.save_pretrained(folder)
    qwen_tokenizer.save_pretrained(folder)
    emb = load_embedder(str(folder), device="cpu", runtime_profile="reference", min_image_tokens=4)
    assert emb.dtype == torch.float16 and emb.truncation == "right" and emb.pre_resize is reference_pre_resize
    assert (emb.min_image_tokens, emb.max_image_tokens, emb.max_length) == (4, 1280, 1800)
    assert emb.runtime_profile == "reference[min_image_tokens=4]"
    vec = emb.encode([Item(text="hello")], role="query", instruction=INSTR, show_progress=False)
    assert np.isfinite(vec).all()
    with pytest.raises(InvalidInputError, match="sets max_length"):
        load_embedder(str(folder), device="cpu", runtime_profile="reference", max_length=64)
    with pytest.raises(InvalidInputError, match="conflicts with runtime_profile"):
        load_embedder(str(folder), device="cpu", dtype="bf16", runtime_profile="reference")
