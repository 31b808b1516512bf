"""A tiny random Qwen2-VL (real tokenizer) trains LoRA with GradCache, checkpoints, resumes, saves, loads."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from gme_data.mining import mine_hard_negatives, pool_from_samples
from gme_data.training import TrainConfig, latest_checkpoint, train
from gme_data.training.gme_lora import GmeLoraTrainable, load_gme_lora_embedder, random_gme_embedder

from .easyvqa_data import it2t_samples

pytest.importorskip("peft")
pytest.importorskip("easy_vqa")

WORDS = ["apple", "river", "mountain", "violin"]


def _table() -> pd.DataFrame:
    t2t = pd.DataFrame([dict(id=f"t-{w}", combination="T->T", instruction="Find the definition.",
                             query_text=f"what is a {w}?", query_image=None, pos_id=f"def-{w}",
                             pos_text=f"A {w} is a thing called {w}.", pos_image=None, source_id=f"src-{w}")
                        for w in WORDS])
    train = pd.concat([t2t, it2t_samples(4)], ignore_index=True)
    train["split"] = "train"
    val = it2t_samples(4, split="test")
    val["split"] = "validation"
    return pd.concat([train, val], ignore_index=True)


def _model():
    emb = random_gme_embedder(seed=0)
    torch.manual_seed(0)
    return GmeLoraTrainable(emb, save_base=True)   # r=8, alpha=16, q/k/v/o, gradient checkpointing


def _lora_state(m: GmeLoraTrainable) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in m.peft_model.named_parameters() if p.requires_grad}


def test_tiny_gme_lora_gradcache_resume_save_load(tmp_path):
    table = _table()
    model = _model()
    assert model.gradient_checkpointing and model.lora["r"] == 8 and model.lora["alpha"] == 16
    names = [n for n, p in model.peft_model.named_parameters() if p.requires_grad]
    assert names and all("language_model" in n and "lora_" in n for n in names)
    assert any("q_proj" in n for n in names) and any("o_proj" in n for n in names)

    # hard negatives mined with the (random) GME model itself
    mined = mine_hard_negatives(table, pool_from_samples(table), model.as_embedder(), k=2, margin=0.0,
                                min_negatives=1)
    assert len(mined.table) >= 8 and mined.stats["model"] == "random-qwen2vl"

    cfg = TrainConfig(epochs=3, batch_size=4, lr=2e-3, n_negatives=2, grad_cache_chunk=3, seed=0,
                      warmup_ratio=0.06)
    # interrupted after 3 steps, then resumed from the newest checkpoint with a fresh model
    part = train(model, mined.table, tmp_path / "run", cfg, stop_after_steps=3)
    assert not part["finished"] and part["steps"] == 3
    ck = latest_checkpoint(tmp_path / "run")
    assert ck is not None and (ck / "optimizer.safetensors").is_file() and not (ck / "optimizer.pt").exists()
    assert (ck / "trainable" / "adapter_model.safetensors").is_file()
    resumed_model = _model()
    report = train(resumed_model, mined.table, tmp_path / "run", cfg, resume=True)
    assert report["finished"] and report["resumed_from"] == str(ck)
    assert report["steps"] == report["total_steps"] == 3 * 2

    # the same schedule uninterrupted gives the same adapter
    straight = _model()
    ref = train(straight, mined.table, tmp_path / "straight", cfg)
    a, b = _lora_state(resumed_model), _lora_state(straight)
    assert all(torch.allclose(a[n], b[n], atol=1e-5) for n in a)
    assert [x["loss"] for x in ref["loss_curve"]] == pytest.approx([x["loss"] for x in report["loss_curve"]],
                                                                   abs=1e-4)

    # loss falls (per-epoch means), validation recorded per epoch, plot written
    losses = np.array([x["loss"] for x in report["loss_curve"]]).reshape(3, 2).mean(1)
    assert losses[-1] < losses[0] * 0.9, losses
    assert [v["label"] for v in report["val_curve"]] == ["before", "epoch 1", "epoch 2", "epoch 3"]
    assert "recall@1" in report["val_final"] and (tmp_path / "run" / "training.png").is_file()

    # the saved folder loads (base + adapter, merged) and embeds like the trained model
    mdir = tmp_path / "run" / "model"
    manifest = json.loads((mdir / "manifest.json").read_text())
    assert manifest["kind"] == "gme-lora" and manifest["base_in_folder"]
    loaded = load_gme_lora_embedder(mdir)
    items = list(mined.table.query_text[:2])
    resumed_model.set_train(False)
    want = resumed_model.as_embedder().encode(items, role="query", instruction="Find the definition.")
    got = loaded.encode(items, role="query", instruction="Find the definition.")
    assert got.shape == (2, 64) and np.allclose(got, want, atol=1e-4)
    assert "+lora-" in loaded.name
    from gme_data import load_embedder

    again = load_embedder(str(mdir), merge=False)   # the load_embedder hook, adapter kept unmerged
    assert np.allclose(again.encode(items, role="query", instruction="Find the definition."), want, atol=1e-4)

    # a second stage starts from the saved adapter
    cont = GmeLoraTrainable(random_gme_embedder(seed=0), base_spec="tiny", init_from=mdir)
    c, r = _lora_state(cont), _lora_state(resumed_model)
    assert all(torch.allclose(c[n], r[n]) for n in r)
