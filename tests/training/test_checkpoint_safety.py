"""Finding 1 of issue 14: resuming a checkpoint never unpickles (a crafted file cannot run code)."""

from __future__ import annotations

import json
import math
import os
import shutil

import pytest
import torch

from gme_data.errors import InvalidInputError
from gme_data.training import TrainConfig, latest_checkpoint, train
from gme_data.training.adapter import AdapterTrainable
from gme_data.training.state_io import load_state, save_state

from .hashed_text import HashedTrigramEmbedder, definition_table

CFG = TrainConfig(epochs=2, batch_size=3, lr=5e-3, n_negatives=2, seed=0, eval_before=False)


class _RunsCodeWhenUnpickled:
    """Unpickling this calls ``os.mkdir(marker)``: the marker's existence proves code ran."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def _model() -> AdapterTrainable:
    torch.manual_seed(0)
    return AdapterTrainable(HashedTrigramEmbedder(), base_spec="hashed")


def _interrupted_run(tmp_path):
    run = tmp_path / "run"
    part = train(_model(), definition_table(), run, CFG, stop_after_steps=2)
    assert not part["finished"] and part["steps"] == 2
    return run, latest_checkpoint(run)


def _plant_pickle(path, marker) -> None:
    torch.save({"optimizer": _RunsCodeWhenUnpickled(str(marker)), "scheduler": {}, "rng": {}}, path)


def test_resume_does_not_unpickle_optimizer_state(tmp_path):
    run, ck = _interrupted_run(tmp_path)
    written = sorted(p.relative_to(ck).as_posix() for p in ck.rglob("*") if p.is_file())
    marker = tmp_path / "code-ran"
    _plant_pickle(ck / "optimizer.pt", marker)       # what an attacker drops into the folder
    try:
        report = train(_model(), definition_table(), run, CFG, resume=True)
    finally:
        assert not marker.exists(), "unpickling the planted optimizer.pt ran code"
    assert report["finished"] and report["resumed_from"] == str(ck)
    assert written == ["optimizer.json", "optimizer.safetensors", "state.json", "trainable/adapter.safetensors"]


def test_resume_refuses_a_legacy_pickle_checkpoint_without_running_it(tmp_path):
    run, ck = _interrupted_run(tmp_path)
    for name in ("optimizer.safetensors", "optimizer.json"):
        (ck / name).unlink()
    marker = tmp_path / "code-ran"
    _plant_pickle(ck / "optimizer.pt", marker)
    with pytest.raises(InvalidInputError, match=r"optimizer\.pt, a pickle, which is never loaded"):
        train(_model(), definition_table(), run, CFG, resume=True)
    assert not marker.exists()


def test_resume_does_not_unpickle_adapter_weights(tmp_path):
    run, ck = _interrupted_run(tmp_path)
    (ck / "trainable" / "adapter.safetensors").unlink()
    marker = tmp_path / "code-ran"
    torch.save(_RunsCodeWhenUnpickled(str(marker)), ck / "trainable" / "adapter.pt")
    with pytest.raises(InvalidInputError, match=r"adapter\.pt, a pickle, is never loaded"):
        train(_model(), definition_table(), run, CFG, resume=True)
    assert not marker.exists()


def test_resumed_training_equals_uninterrupted_run(tmp_path):
    run, _ = _interrupted_run(tmp_path)
    resumed = _model()
    report = train(resumed, definition_table(), run, CFG, resume=True)
    straight = _model()
    ref = train(straight, definition_table(), tmp_path / "straight", CFG)
    assert report["steps"] == ref["steps"] == report["total_steps"]
    a, b = resumed.adapter.state_dict(), straight.adapter.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [x["loss"] for x in report["loss_curve"]] == [x["loss"] for x in ref["loss_curve"]]


def test_checkpoint_state_round_trips_int_keys_tuples_and_scalars(tmp_path):
    state = {"state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.arange(4.0).reshape(2, 2)}},
             "param_groups": [{"betas": (0.9, 0.999), "lr": 1e-4, "params": [0], "fused": None,
                               "amsgrad": False, "eps": math.inf}],
             "rng": {"torch": torch.get_rng_state()}, "names": ["a"]}
    save_state(state, tmp_path, "opt")
    back = load_state(tmp_path, "opt")
    assert list(back["state"]) == [0] and back["param_groups"][0]["betas"] == (0.9, 0.999)
    assert torch.equal(back["state"][0]["exp_avg"], state["state"][0]["exp_avg"])
    assert back["state"][0]["step"].shape == () and float(back["state"][0]["step"]) == 3.0
    assert torch.equal(back["rng"]["torch"], state["rng"]["torch"]) and back["param_groups"][0]["eps"] == math.inf
    assert back["names"] == ["a"] and back["param_groups"][0]["fused"] is None


def test_crafted_checkpoint_state_is_a_named_error(tmp_path):
    save_state({"x": torch.zeros(2)}, tmp_path, "opt")
    (tmp_path / "opt.json").write_text(json.dumps({"format": "gme_data-state-1",
                                                   "state": {"__tensor__": "t99"}}))
    with pytest.raises(InvalidInputError, match=r"opt\.json: refers to tensor 't99'"):
        load_state(tmp_path, "opt")
    (tmp_path / "opt.json").write_text(json.dumps({"format": "gme_data-state-1",
                                                   "state": {"__reduce__": ["os.system", "id"]}}))
    with pytest.raises(InvalidInputError, match="not written by gme_data"):
        load_state(tmp_path, "opt")
    shutil.copy(tmp_path / "opt.json", tmp_path / "other.json")
    with pytest.raises(InvalidInputError, match="other.safetensors missing"):
        load_state(tmp_path, "other")
