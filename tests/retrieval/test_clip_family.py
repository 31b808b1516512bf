"""CLIP-family embedders through ``load_embedder(folder)`` on tiny random CLIP / SigLIP checkpoints.

Each folder is written offline (config + weights, a ``tokenizers`` word-level tokenizer, the family's
PIL image processor). Vectors are checked against a direct transformers forward written here
(``get_text_features`` / ``get_image_features`` per item, L2-normalised), for independence of batch
size and batch composition, and for the CLIP-SF fusion formula.
"""

from __future__ import annotations

import functools
import logging
import random

import numpy as np
import pytest
import torch
from transformers import AutoImageProcessor, AutoTokenizer, CLIPModel, SiglipModel

from gme_data import Item
from gme_data.errors import InvalidInputError
from gme_data.retrieval import load_embedder
from gme_data.retrieval.clip_family import FAMILY_IMAGE_SCORE_THRESHOLDS, ClipFamilyEmbedder, clip_family_of
from gme_data.retrieval.clip_tiny import save_tiny_clip_family
from gme_data.retrieval.demo_photos import photo_caption_pairs

TOL = 1e-5
MAX_LEN = 16
TEXTS = ["a red cat", "the blue car on the bridge", "a photo of a green tree in the city",
         # 25 words: longer than the 16-token limit, so it is truncated
         " ".join(["a photo of the yellow flower"] * 5)]


@pytest.fixture(scope="module", params=["clip", "siglip"])
def family(request):
    return request.param


@pytest.fixture(scope="module")
def folder(tmp_path_factory, family):
    return save_tiny_clip_family(tmp_path_factory.mktemp(f"tiny_{family}"), family, seed=3, max_length=MAX_LEN)


@pytest.fixture(scope="module")
def emb(folder):
    return load_embedder(str(folder), device="cpu")


@pytest.fixture(scope="module")
def photos():
    images, _ = photo_caption_pairs(limit=3)
    return images


@functools.lru_cache(maxsize=4)
def reference(folder, family):
    """The checkpoint loaded with transformers alone: (model, tokenizer, image processor)."""
    model = (CLIPModel if family == "clip" else SiglipModel).from_pretrained(folder).eval()
    return model, AutoTokenizer.from_pretrained(folder), AutoImageProcessor.from_pretrained(folder, backend="pil")


def direct_text(folder, family, text):
    model, tok, _ = reference(folder, family)
    if family == "clip":
        enc = tok([text], truncation=True, max_length=MAX_LEN, return_tensors="pt")
        inputs = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
    else:  # SigLIP: padded to max_length, no mask (as trained)
        enc = tok([text], padding="max_length", truncation=True, max_length=MAX_LEN, return_tensors="pt")
        inputs = {"input_ids": enc["input_ids"]}
    with torch.no_grad():
        out = model.get_text_features(**inputs)
    return torch.nn.functional.normalize(out.pooler_output, dim=-1)[0].numpy()


def direct_image(folder, family, image):
    model, _, proc = reference(folder, family)
    with torch.no_grad():
        out = model.get_image_features(pixel_values=proc(images=[image], return_tensors="pt")["pixel_values"])
    return torch.nn.functional.normalize(out.pooler_output, dim=-1)[0].numpy()


def test_loads_by_folder_with_family_settings(emb, family):
    assert isinstance(emb, ClipFamilyEmbedder)
    assert emb.family == family and emb.name.startswith(f"{family}:")
    assert emb.max_length == MAX_LEN
    assert emb.dtype == torch.float32
    if family == "clip":
        assert emb.image_score_threshold == FAMILY_IMAGE_SCORE_THRESHOLDS["clip"] == 0.2
    assert emb.weights_id and f"weights={emb.weights_id}" in emb.cache_key
    assert emb.runtime_profile == "clip-sf"
    # SigLIP: transformers' own sentencepiece SiglipTokenizer from the folder
    if family == "siglip":
        assert type(emb.tokenizer).__name__ == "SiglipTokenizer"


def test_siglip_threshold_is_its_sigmoid_midpoint(emb, family):
    if family != "siglip":
        assert emb.match_threshold is None
        return
    model = emb.model
    saved = model.logit_scale.detach().clone(), model.logit_bias.detach().clone()
    try:
        with torch.no_grad():  # a trained-looking SigLIP head: scale exp(4.7215) ~ 112.3, bias -12
            model.logit_scale.fill_(4.7215)
            model.logit_bias.fill_(-12.0)
        assert emb.image_score_threshold == pytest.approx(12.0 / np.exp(4.7215), rel=1e-5)
        cos = emb.image_score_threshold  # where the model's own sigmoid says 0.5
        assert torch.sigmoid(model.logit_scale.exp() * cos + model.logit_bias).item() == pytest.approx(0.5, abs=1e-5)
        with torch.no_grad():  # no usable midpoint (outside the cosine range): the family's placeholder
            model.logit_bias.fill_(-500.0)
        assert emb.image_score_threshold == FAMILY_IMAGE_SCORE_THRESHOLDS["siglip"]
    finally:
        with torch.no_grad():
            model.logit_scale.copy_(saved[0])
            model.logit_bias.copy_(saved[1])


def test_text_vectors_equal_direct_forward(emb, folder, family):
    got = emb.encode(TEXTS, role="candidate")
    want = np.stack([direct_text(folder, family, t) for t in TEXTS])
    assert got.dtype == np.float32 and got.shape == (len(TEXTS), emb.dim)
    np.testing.assert_allclose(got, want, atol=TOL)


def test_image_vectors_equal_direct_forward(emb, folder, family, photos):
    got = emb.encode(photos, role="candidate")
    want = np.stack([direct_image(folder, family, im) for im in photos])
    np.testing.assert_allclose(got, want, atol=TOL)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-6)


def test_fused_vector_is_clip_sf(emb, folder, family, photos):
    items = [Item(text=t, image=im, id=f"f{i}") for i, (t, im) in enumerate(zip(TEXTS, photos, strict=False))]
    got = emb.encode(items, role="candidate")
    for i, it in enumerate(items):
        t, v = direct_text(folder, family, it.text), direct_image(folder, family, it.image)
        want = (t / np.linalg.norm(t) + v / np.linalg.norm(v))
        np.testing.assert_allclose(got[i], want / np.linalg.norm(want), atol=TOL)


def test_independent_of_batch_size_and_mixing(emb, photos):
    items = ([Item(text=t, id=f"t{i}") for i, t in enumerate(TEXTS)]
             + [Item(image=im, id=f"i{i}") for i, im in enumerate(photos)]
             + [Item(text=t, image=im, id=f"f{i}") for i, (t, im) in enumerate(zip(TEXTS, photos, strict=False))])
    alone = np.stack([emb.encode([it], role="candidate")[0] for it in items])
    order = list(range(len(items)))
    random.Random(0).shuffle(order)
    for bs in (1, 2, 5, 64):
        mixed = emb.encode([items[i] for i in order], role="candidate", batch_size=bs)
        np.testing.assert_allclose(mixed, alone[order], atol=TOL)


def test_long_text_truncated_with_counted_warning(emb, caplog):
    before = emb.truncated_texts
    with caplog.at_level(logging.WARNING, logger="gme_data.retrieval.clip_family"):
        emb.encode([TEXTS[3], TEXTS[0], TEXTS[3] + " red"], role="candidate")
    assert emb.truncated_texts == before + 2
    assert any(f"2 text(s) longer than {MAX_LEN} tokens truncated" in r.getMessage() for r in caplog.records)


def test_instructions_ignored_and_logged_once(emb, caplog):
    emb._told_instructions = False
    with caplog.at_level(logging.INFO, logger="gme_data.retrieval.clip_family"):
        a = emb.encode(TEXTS[:2], role="query", instruction="Find an image that matches the given text.")
        b = emb.encode(TEXTS[:2], role="query", instruction="Retrieve a passage that answers the question.")
    c = emb.encode(TEXTS[:2], role="candidate")
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a, c, atol=1e-7)
    told = [r for r in caplog.records if "instructions are ignored" in r.getMessage()]
    assert len(told) == 1


def test_family_detection_by_name_and_folder(tmp_path, folder, family):
    assert clip_family_of("openai/clip-vit-large-patch14") == "clip"
    assert clip_family_of("google/siglip-so400m-patch14-384") == "siglip"
    assert clip_family_of("clip:some-org/model") == "clip"
    assert clip_family_of("gme-2b") is None and clip_family_of("Alibaba-NLP/gme-Qwen2-VL-2B-Instruct") is None
    assert clip_family_of(str(folder)) == family
    assert clip_family_of(str(tmp_path)) is None


def test_bad_inputs_are_named(tmp_path, folder, family):
    other = "siglip" if family == "clip" else "clip"
    with pytest.raises(InvalidInputError, match=f"model_type is '{family}', expected '{other}'"):
        load_embedder(str(folder), family=other)
    with pytest.raises(InvalidInputError, match="model folder not found"):
        load_embedder("clip:/no/such/folder")
    with pytest.raises(InvalidInputError, match="max_length"):
        load_embedder(str(folder), max_length=MAX_LEN + 1)
    # a hub id with the hub switched off: a named error, not a raw OSError
    with pytest.raises(InvalidInputError, match="cannot load clip checkpoint 'openai/clip-vit-base-patch32'"):
        load_embedder("openai/clip-vit-base-patch32", local_files_only=True)
