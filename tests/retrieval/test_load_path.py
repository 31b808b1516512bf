"""The user path ``gme_data.load_embedder(folder)`` on a tiny random Qwen2-VL saved to disk.

The folder holds what a real GME checkpoint holds (weights + config, tokenizer files, a Qwen2-VL
``preprocessor_config.json`` with GME's pixel budget). Vectors are checked against a per-item forward
written here with transformers' own pieces (the published reference flow: image features scattered
into ``inputs_embeds`` at the ``<|image_pad|>`` tokens, the language model called with no position ids,
last token, L2), for batch invariance, for the reference / M-RoPE split, and for named errors.
"""

from __future__ import annotations

import logging
import random

import numpy as np
import pytest
import torch
from PIL import Image

from gme_data import Item
from gme_data.errors import InvalidInputError, InvalidItemError
from gme_data.retrieval import load_embedder
from gme_data.retrieval.qwen2vl_configs import random_qwen2vl

INSTR = "Find an image that matches the given text."
GME_MIN_PIXELS, GME_MAX_PIXELS = 256 * 28 * 28, 1280 * 28 * 28
TOL = 1e-5


@pytest.fixture(scope="module")
def model():
    """A seeded fp32 tiny Qwen2-VL in the published layout (ForConditionalGeneration)."""
    return random_qwen2vl("tiny", seed=7, dtype=torch.float32, lm_head=True)


@pytest.fixture(scope="module")
def folder(tmp_path_factory, model, qwen_tokenizer):
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    path = tmp_path_factory.mktemp("gme_tiny_checkpoint")
    model.save_pretrained(path)
    qwen_tokenizer.save_pretrained(path)
    Qwen2VLImageProcessorPil(min_pixels=GME_MIN_PIXELS, max_pixels=GME_MAX_PIXELS).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def emb(folder):
    return load_embedder(str(folder))


@pytest.fixture(scope="module")
def items(tmp_path_factory):
    """8 items (2 text, 3 image, 3 fused) whose images are random-content JPEG files of varied shapes."""
    root = tmp_path_factory.mktemp("jpegs")
    rng = np.random.default_rng(0)
    paths = []
    for i, (w, h) in enumerate([(320, 240), (200, 360), (448, 448), (500, 180), (256, 256), (300, 420)]):
        p = root / f"img{i}.jpg"
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(p, quality=90)
        paths.append(str(p))
    return [
        Item(text="a cat sitting on a sofa", id="t0"),
        Item(text="what is the tallest mountain in the alps? " * 3, id="t1"),
        Item(image=paths[0], id="i0"),
        Item(image=paths[1], id="i1"),
        Item(image=paths[2], id="i2"),
        Item(text="this plant: where does it grow?", image=paths[3], id="f0"),
        Item(text="the building in the picture", image=paths[4], id="f1"),
        Item(text="x", image=paths[5], id="f2"),
    ]


@pytest.fixture(scope="module")
def folder_parts(folder):
    """The folder's tokenizer and image processor, loaded by transformers itself."""
    from transformers import AutoTokenizer
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    return (AutoTokenizer.from_pretrained(str(folder), local_files_only=True),
            Qwen2VLImageProcessorPil.from_pretrained(str(folder)))


def reference_vector(model, tok, proc, item: Item, instruction: str) -> np.ndarray:
    """One item through transformers directly: GME template, image before text, sequential positions."""
    base = model.model
    img = ""
    if item.image is not None:
        pix = proc(images=[Image.open(item.image).convert("RGB")], return_tensors="pt")
        n_tokens = int(pix["image_grid_thw"][0].prod()) // 4
        img = "<|vision_start|>" + "<|image_pad|>" * n_tokens + "<|vision_end|>"
    prompt = (f"<|im_start|>system\n{instruction}<|im_end|>\n<|im_start|>user\n{img}{item.text or ''}<|im_end|>\n"
              "<|im_start|>assistant\n<|endoftext|>")
    ids = tok(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        embeds = base.get_input_embeddings()(ids)
        if item.image is not None:
            feats = torch.cat(base.get_image_features(pix["pixel_values"], pix["image_grid_thw"]).pooler_output)
            is_pad = ids[0] == model.config.image_token_id
            assert int(is_pad.sum()) == feats.shape[0] == n_tokens
            embeds[0, is_pad] = feats
        hidden = base.language_model(inputs_embeds=embeds).last_hidden_state[0, -1]
    return torch.nn.functional.normalize(hidden, dim=-1).numpy()


def test_folder_loads_its_own_tokenizer_and_processor(emb, folder):
    assert emb.tokenizer_source == str(folder)
    assert emb.image_processor_source.endswith("preprocessor_config.json")
    assert emb.position_mode == "reference" and emb.dim == 64 and emb.dtype == torch.float32
    assert emb.processor.size.shortest_edge == GME_MIN_PIXELS and emb.processor.size.longest_edge == GME_MAX_PIXELS


def test_parity_with_direct_transformers_forward(emb, model, folder_parts, items):
    worst = 0.0
    for item in (items[0], items[2], items[5]):  # text, image, fused
        expected = reference_vector(model, *folder_parts, item, INSTR)
        got = emb.encode([item], role="query", instruction=INSTR)[0]
        diff = float(np.abs(got - expected).max())
        print(f"parity {item.modality:<5} ({item.id}): max|diff| = {diff:.2e}")
        assert diff <= TOL, item.id
        worst = max(worst, diff)
    print(f"parity max|diff| over text/image/fused = {worst:.2e}")


def test_batch_invariance_over_shuffled_mix(emb, items):
    order = list(range(len(items)))
    random.Random(3).shuffle(order)
    mix = [items[i] for i in order]
    singles = emb.encode(mix, instruction=INSTR, batch_size=1)
    worst = 0.0
    for bs in (3, 8):
        worst = max(worst, float(np.abs(emb.encode(mix, instruction=INSTR, batch_size=bs) - singles).max()))
        # chunks in the shuffled order, bypassing encode's cost sort: every chunk mixes modalities
        for start in range(0, len(mix), bs):
            chunk = mix[start:start + bs]
            with torch.no_grad():
                vecs = emb.embed_tensors(emb.prepare(chunk, instruction=INSTR)).numpy()
            worst = max(worst, float(np.abs(vecs - singles[start:start + bs]).max()))
    print(f"batch invariance (sizes 1/3/8, shuffled mix of 8) max|diff| = {worst:.2e}")
    assert worst <= TOL
    assert np.abs(singles[order.index(2)] - singles[order.index(3)]).max() > 1e-3  # images are not dropped


def test_mrope_differs_from_reference_only_with_images(emb, folder, items):
    mrope = load_embedder(str(folder), position_mode="mrope")
    assert mrope.position_mode == "mrope"
    ref_vecs = emb.encode(items, instruction=INSTR, batch_size=8)
    mrope_vecs = mrope.encode(items, instruction=INSTR, batch_size=8)
    diff = np.abs(ref_vecs - mrope_vecs).max(axis=1)
    has_image = np.array([it.image is not None for it in items])
    assert (diff[~has_image] <= 1e-6).all() and (diff[has_image] > 1e-4).all(), diff
    batch = emb.prepare(items, instruction=INSTR)
    ref_pos, mrope_pos = emb.position_ids(batch), mrope.position_ids(batch)
    for row in range(len(items)):
        pads = (batch.input_ids[row] == emb.image_token_id).nonzero()
        valid = int(batch.attention_mask[row].sum())
        if len(pads) == 0:
            assert torch.equal(ref_pos[:, row, :valid], mrope_pos[:, row, :valid])
        else:
            first = int(pads[0])
            assert torch.equal(ref_pos[:, row, :first], mrope_pos[:, row, :first])
            assert not torch.equal(ref_pos[:, row, first:valid], mrope_pos[:, row, first:valid])


def test_folder_without_tokenizer_uses_offline_tokenizer(emb, model, tmp_path, items, caplog):
    bare = tmp_path / "no_tokenizer"
    model.model.save_pretrained(bare)  # the bare Qwen2VLModel: weights + config only
    assert not (bare / "tokenizer.json").exists() and not (bare / "preprocessor_config.json").exists()
    with caplog.at_level(logging.WARNING, logger="gme_data.retrieval.gme_qwen2vl"):
        loaded = load_embedder(str(bare))
    assert "offline Qwen2-VL tokenizer" in caplog.text and str(bare) in caplog.text
    assert loaded.tokenizer_source == "offline Qwen2-VL tokenizer"
    assert loaded.image_processor_source == "GME defaults"
    subset = [items[0], items[2], items[6]]
    diff = np.abs(loaded.encode(subset, instruction=INSTR) - emb.encode(subset, instruction=INSTR)).max()
    assert diff <= 1e-6


def test_bad_inputs_raise_named_errors(emb, tmp_path, items):
    missing = tmp_path / "missing.jpg"
    with pytest.raises(InvalidItemError, match="missing.jpg"):
        Item(image=str(missing), id="gone")
    Image.new("RGB", (64, 64)).save(missing)
    vanished = Item(text="caption", image=str(missing), id="vanished")
    missing.unlink()
    with pytest.raises(InvalidItemError, match="vanished"):
        emb.encode([items[0], vanished])
    with pytest.raises(InvalidItemError, match="empty"):
        Item(text="   ", id="blank")
    with pytest.raises(InvalidItemError, match="empty text"):
        emb.encode(["a query", ""])
    with pytest.raises(InvalidInputError, match="not found"):
        load_embedder(str(tmp_path / "no_such_model"))
    (tmp_path / "empty_folder").mkdir()
    with pytest.raises(InvalidInputError, match="config.json"):
        load_embedder(str(tmp_path / "empty_folder"))
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(InvalidInputError, match="qwen2_vl"):
        load_embedder(str(tmp_path / "bert"))
    with pytest.raises(InvalidInputError, match="position_mode"):
        load_embedder(str(tmp_path / "bert"), position_mode="2d")
