"""The fast GME inference path (gme_data.retrieval.gme_fast) on a tiny random Qwen2-VL, fp32 on CPU.

The same code runs on CUDA with bf16 and compilation (benchmarks/gme_throughput.py); here it must give
the plain path's vectors to float rounding for text, image and fused items of several sizes, mixed in
one call, whatever the batch budget.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from gme_data import Item
from gme_data.retrieval.gme_fast import (
    PixelPipeline,
    PlannedItem,
    image_size,
    plan_batches,
    plan_items,
)
from gme_data.retrieval.gme_qwen2vl import GmeQwen2VL

INSTR = "Find an image that matches the given text."


def _photo(tmp_path, name: str, size: tuple[int, int], seed: int, exif_rotate: bool = False) -> str:
    rng = np.random.default_rng(seed)
    w, h = size
    coarse = rng.integers(0, 256, (max(h // 8, 1), max(w // 8, 1), 3), dtype=np.uint8)
    img = Image.fromarray(coarse).resize((w, h), Image.Resampling.BILINEAR)
    path = tmp_path / name
    if exif_rotate:
        exif = Image.Exif()
        exif[0x0112] = 6  # rotate 90 degrees on display
        img.save(path, quality=92, exif=exif)
    else:
        img.save(path, quality=92)
    return str(path)


@pytest.fixture(scope="module")
def items(tmp_path_factory, photos):
    tmp = tmp_path_factory.mktemp("fast")
    images, _ = photos
    return [
        Item(text="a cat sitting on a sofa", id="t1"),
        Item(image=_photo(tmp, "a.jpg", (120, 90), 1), id="i1"),
        Item(text="what is on the suit?", image=images[0], id="f1"),
        Item(text="hi", id="t2"),
        Item(image=_photo(tmp, "b.jpg", (120, 90), 2), id="i2"),  # same grid as i1: one dense vision batch
        Item(image=_photo(tmp, "c.png", (200, 60), 3), id="i3"),
        Item(image=_photo(tmp, "d.jpg", (90, 140), 4, exif_rotate=True), id="i4"),
        Item(text="a much longer text query " * 6, image=_photo(tmp, "e.jpg", (64, 64), 5), id="f2"),
    ]


@pytest.fixture(scope="module")
def plain(tiny_model, qwen_tokenizer):
    return GmeQwen2VL(tiny_model, qwen_tokenizer, name="tiny-gme", min_image_tokens=4, max_image_tokens=64,
                      fast_path=False)


@pytest.fixture(scope="module")
def fast(tiny_model, qwen_tokenizer):
    return GmeQwen2VL(tiny_model, qwen_tokenizer, name="tiny-gme", min_image_tokens=4, max_image_tokens=64,
                      fast_path=True, compile=False)


def test_fast_path_is_default_on_cuda_only(gme, fast, plain):
    assert gme.uses_fast_path is (gme.device.type == "cuda")
    assert fast.uses_fast_path and not plain.uses_fast_path


@pytest.mark.parametrize("role,instruction", [("query", INSTR), ("candidate", None)])
def test_fast_equals_plain_on_mixed_items(plain, fast, items, role, instruction):
    want = plain.encode(items, role=role, instruction=instruction, batch_size=3)
    got = fast.encode(items, role=role, instruction=instruction)
    assert got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert np.abs(got - want).max() < 1e-5


def test_fast_vectors_do_not_depend_on_budget_or_order(fast, items):
    ref = fast.encode(items, role="query", instruction=INSTR)
    order = np.random.default_rng(0).permutation(len(items))
    for tokens, patches in ((64, 64), (300, 500), (100000, 100000)):
        fast.max_batch_tokens, fast.max_batch_patches = tokens, patches
        got = fast.encode([items[i] for i in order], role="query", instruction=INSTR)
        assert np.abs(got - ref[order]).max() < 1e-5
    fast.max_batch_tokens = fast.max_batch_patches = None


def test_mrope_mode_fast_path_uses_model_positions(tiny_model, qwen_tokenizer, items):
    kw = dict(name="tiny-gme", min_image_tokens=4, max_image_tokens=64, position_mode="mrope")
    plain = GmeQwen2VL(tiny_model, qwen_tokenizer, fast_path=False, **kw)
    fast = GmeQwen2VL(tiny_model, qwen_tokenizer, fast_path=True, compile=False, **kw)
    assert not fast.fast_runner().custom_lm
    want = plain.encode(items, role="query", instruction=INSTR)
    got = fast.encode(items, role="query", instruction=INSTR)
    assert np.abs(got - want).max() < 1e-5


def test_device_patches_equal_the_image_processor(fast, items):
    pipe = PixelPipeline(fast.processor, torch.device("cpu"), torch.float32, workers=2)
    try:
        assert pipe.on_device
        for it in items:
            if it.image is None:
                continue
            (planned,) = plan_items(fast, [it], INSTR)
            arr = pipe.submit([(it, planned.size)])[0].result()
            got = pipe.patches([arr], planned.grid)[0]
            want = fast.processor(images=[it.load_image()], return_tensors="pt")
            assert tuple(want["image_grid_thw"][0].tolist()) == planned.grid
            assert torch.abs(got - want["pixel_values"]).max().item() < 1e-5
    finally:
        pipe.close()


def test_header_size_follows_exif_orientation(items):
    rotated = items[6]
    assert image_size(rotated) == rotated.load_image().size == (140, 90)


def test_planned_ids_equal_the_exact_path(fast, items):
    planned = plan_items(fast, items, INSTR)
    for it, p in zip(items, planned, strict=True):
        n = p.grid[1] * p.grid[2] // 4 if p.grid else 0
        assert p.ids == fast.item_ids(it, INSTR, n)
    short = GmeQwen2VL(fast.model, fast.tokenizer, name="tiny-gme", max_length=40, fast_path=True, compile=False)
    long_item = Item(text="word " * 200)
    (p,) = plan_items(short, [long_item], INSTR)
    assert len(p.ids) <= 40 and p.ids == short.item_ids(long_item, INSTR, 0)


def test_plan_batches_respects_budgets():
    planned = [PlannedItem(i, [0] * (10 + i), None if i % 2 else (1, 4, 4), None) for i in range(20)]
    batches = plan_batches(planned, max_tokens=100, max_patches=40)
    assert sorted(p.index for b in batches for p in b) == list(range(20))
    for b in batches:
        assert len(b) == 1 or max(len(p.ids) for p in b) * len(b) <= 100
        assert sum(16 for p in b if p.grid) <= 40
    big = [PlannedItem(0, [0] * 500, None, None)]
    assert plan_batches(big, max_tokens=100, max_patches=40) == [big]


def test_fast_path_errors_name_the_item(fast, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not an image")
    from gme_data.errors import InvalidItemError

    with pytest.raises(InvalidItemError, match="broken-one"):
        fast.encode([Item(text="ok"), Item(image=str(bad), id="broken-one")])


def test_compiled_fast_path_equals_plain(tiny_model, qwen_tokenizer, plain, items):
    """The default on CUDA is the compiled path: torch.compile (inductor, CPU here) of the same layer functions."""
    compiled = GmeQwen2VL(tiny_model, qwen_tokenizer, name="tiny-gme", min_image_tokens=4, max_image_tokens=64,
                          fast_path=True, compile=True)
    want = plain.encode(items, role="query", instruction=INSTR)
    got = compiled.encode(items, role="query", instruction=INSTR)
    assert compiled.fast_runner().compiled
    assert np.abs(got - want).max() < 1e-5


def test_fast_path_follows_the_reference_profile_hooks(tiny_model, qwen_tokenizer, items):
    """Right truncation and the PIL pre-resize of the `reference` runtime profile apply on the fast path too."""
    from gme_data.retrieval.gme_profiles import reference_pre_resize

    kw = dict(name="tiny-gme", min_image_tokens=4, max_image_tokens=64, max_length=120, truncation="right",
              pre_resize=reference_pre_resize)
    plain = GmeQwen2VL(tiny_model, qwen_tokenizer, fast_path=False, **kw)
    fast = GmeQwen2VL(tiny_model, qwen_tokenizer, fast_path=True, compile=False, **kw)
    mixed = [*items, Item(text="a long query that runs past the limit " * 20, id="long")]
    want = plain.encode(mixed, role="query", instruction=INSTR)
    got = fast.encode(mixed, role="query", instruction=INSTR)
    assert np.abs(got - want).max() < 1e-5
