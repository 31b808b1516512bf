"""GME runtime on a tiny random-weight Qwen2-VL: template, pooling, batch invariance, positions, grads."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gme_data import Item
from gme_data.errors import InvalidInputError, InvalidItemError
from gme_data.retrieval.gme_qwen2vl import GmeQwen2VL, gme_prompt
from gme_data.retrieval.qwen_tokenizer import SPECIAL_TOKENS, tiktoken_encoding

INSTR = "Find an image that matches the given text."


@pytest.fixture(scope="module")
def mixed_items(photos):
    images, _ = photos
    cat, astronaut, coffee = images[1], images[0], images[2]
    return [
        Item(text="a cat sitting on a sofa", id="t1"),
        Item(image=cat, id="i1"),
        Item(text="an astronaut next to a flag, what is on the suit?", image=astronaut, id="f1"),
        Item(text="hi", id="t2"),
        Item(image=coffee, id="i2"),
        Item(text="a much longer text query " * 6, id="t3"),
    ]


def test_template_ids_image_before_text_and_instruction(gme, mixed_items):
    fused = mixed_items[2]
    batch = gme.prepare([fused], role="query", instruction=INSTR)
    ids = batch.input_ids[0].tolist()
    n_img = int(batch.image_grid_thw[0].prod()) // 4
    prompt = gme_prompt(INSTR, fused.text, True).replace("<|image_pad|>", "<|image_pad|>" * n_img)
    assert ids == tiktoken_encoding().encode(prompt, allowed_special="all")
    text_start = ids.index(SPECIAL_TOKENS["<|vision_end|>"]) + 1
    assert ids.index(SPECIAL_TOKENS["<|vision_start|>"]) < text_start
    assert tiktoken_encoding().decode(ids[text_start:text_start + 3]).startswith("an astronaut")
    assert tiktoken_encoding().decode(ids).startswith(f"<|im_start|>system\n{INSTR}<|im_end|>")
    cand = gme.prepare([fused], role="candidate", instruction=INSTR).input_ids[0].tolist()
    assert tiktoken_encoding().decode(cand).startswith("<|im_start|>system\nYou are a helpful assistant.")


def test_last_token_pooling_matches_plain_forward(gme, tiny_model, mixed_items):
    item = mixed_items[0]
    batch = gme.prepare([item], role="query", instruction=INSTR)
    assert batch.input_ids[0, batch.last_index[0]].item() == SPECIAL_TOKENS["<|endoftext|>"]
    with torch.no_grad():
        tiny_model.rope_deltas = None
        hidden = tiny_model(input_ids=batch.input_ids).last_hidden_state[0, -1]
    expected = torch.nn.functional.normalize(hidden, dim=-1).numpy()
    got = gme.encode([item], role="query", instruction=INSTR)[0]
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_reference_mode_matches_reference_flow(gme, tiny_model, mixed_items):
    """Reference: image features scattered into inputs_embeds, then no position ids (1-D sequential)."""
    item = mixed_items[2]
    batch = gme.prepare([item], role="query", instruction=INSTR)
    with torch.no_grad():
        embeds = tiny_model.get_input_embeddings()(batch.input_ids)
        feats = torch.cat(tiny_model.get_image_features(batch.pixel_values, batch.image_grid_thw).pooler_output)
        mask = (batch.input_ids == tiny_model.config.image_token_id).unsqueeze(-1)
        embeds = embeds.masked_scatter(mask, feats)
        tiny_model.rope_deltas = None
        hidden = tiny_model(inputs_embeds=embeds).last_hidden_state[0, -1]
    expected = torch.nn.functional.normalize(hidden, dim=-1).numpy()
    np.testing.assert_allclose(gme.encode([item], instruction=INSTR)[0], expected, atol=1e-5)


def test_mrope_mode_matches_models_own_mrope(gme_mrope, tiny_model, mixed_items):
    item = mixed_items[1]
    batch = gme_mrope.prepare([item], role="query", instruction=INSTR)
    with torch.no_grad():
        tiny_model.rope_deltas = None
        hidden = tiny_model(input_ids=batch.input_ids, pixel_values=batch.pixel_values,
                            image_grid_thw=batch.image_grid_thw,
                            mm_token_type_ids=batch.mm_token_type_ids).last_hidden_state[0, -1]
        tiny_model.rope_deltas = None
    expected = torch.nn.functional.normalize(hidden, dim=-1).numpy()
    np.testing.assert_allclose(gme_mrope.encode([item], instruction=INSTR)[0], expected, atol=1e-5)
    assert gme_mrope.position_mode == "mrope"


@pytest.mark.parametrize("mode", ["reference", "mrope"])
def test_mixed_batches_are_batch_invariant(gme, gme_mrope, mixed_items, mode):
    emb = gme if mode == "reference" else gme_mrope
    singles = np.stack([emb.encode([it], instruction=INSTR, batch_size=1)[0] for it in mixed_items])
    assert np.allclose(np.linalg.norm(singles, axis=1), 1.0, atol=1e-5)
    for batch_size in (2, 3, len(mixed_items)):
        full = emb.encode(mixed_items, instruction=INSTR, batch_size=batch_size)
        assert np.abs(full - singles).max() <= 1e-5
    order = [5, 2, 0, 4, 1, 3]
    shuffled = emb.encode([mixed_items[i] for i in order], instruction=INSTR, batch_size=6)
    assert np.abs(shuffled - singles[order]).max() <= 1e-5
    # image items are really embedded in mixed batches (not dropped): images differ from each other
    assert np.abs(singles[1] - singles[4]).max() > 1e-3


def test_reference_and_mrope_equal_for_text_differ_for_images(gme, gme_mrope, mixed_items):
    texts = [mixed_items[0], mixed_items[3], mixed_items[5]]
    text_batch = gme.prepare(texts, instruction=INSTR)
    assert torch.equal(gme.position_ids(text_batch), gme_mrope.position_ids(text_batch))
    np.testing.assert_array_equal(gme.encode(texts, instruction=INSTR), gme_mrope.encode(texts, instruction=INSTR))
    images = [mixed_items[1], mixed_items[2], mixed_items[4]]
    img_batch = gme.prepare(images, instruction=INSTR)
    assert not torch.equal(gme.position_ids(img_batch), gme_mrope.position_ids(img_batch))
    diff = np.abs(gme.encode(images, instruction=INSTR) - gme_mrope.encode(images, instruction=INSTR)).max(axis=1)
    assert (diff > 1e-4).all()


def test_differentiable_forward_and_dtype(gme, tiny_model, qwen_tokenizer, mixed_items):
    batch = gme.prepare(mixed_items[:3], role="query", instruction=INSTR)
    with torch.enable_grad():
        vecs = gme.embed_tensors(batch)
        assert vecs.requires_grad and vecs.shape == (3, gme.dim)
        (vecs[0] @ vecs[1]).backward()
    grads = [p.grad for p in tiny_model.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)
    assert tiny_model.visual.merger.mlp[0].weight.grad.abs().sum() > 0
    tiny_model.zero_grad(set_to_none=True)

    import copy

    bf16 = GmeQwen2VL(copy.deepcopy(tiny_model).to(torch.bfloat16), qwen_tokenizer, name="tiny-gme",
                      min_image_tokens=4, max_image_tokens=64)
    a = gme.encode(mixed_items[:3], instruction=INSTR)
    b = bf16.encode(mixed_items[:3], instruction=INSTR)
    assert b.dtype == np.float32 and (a * b).sum(1).min() > 0.95
    assert bf16.settings["dtype"] == "bfloat16" and bf16.cache_key != gme.cache_key


def test_long_text_is_truncated_keeping_template(gme, tiny_model, qwen_tokenizer):
    short = GmeQwen2VL(tiny_model, qwen_tokenizer, name="tiny-gme", max_length=40)
    batch = short.prepare([Item(text="word " * 200)], instruction=INSTR)
    ids = batch.input_ids[0].tolist()
    assert len(ids) <= 40 and ids[-1] == SPECIAL_TOKENS["<|endoftext|>"]
    assert ids[-6:-1] == tiktoken_encoding().encode("<|im_end|>\n<|im_start|>assistant\n", allowed_special="all")


def test_bad_inputs_raise_named_errors(gme, tiny_model, qwen_tokenizer):
    with pytest.raises(InvalidInputError, match="position_mode"):
        GmeQwen2VL(tiny_model, qwen_tokenizer, position_mode="2d")
    with pytest.raises(InvalidInputError, match="role"):
        gme.encode(["x"], role="document")
    with pytest.raises(InvalidItemError, match="#1"):
        gme.encode(["ok", 3])
    from PIL import Image

    with pytest.raises(InvalidItemError, match="skinny"):
        gme.encode([Item(image=Image.new("RGB", (2000, 5)), id="skinny")])
