"""One contrastive trainer for every trainable model family (offline adapter, GME + LoRA).

A model family implements :class:`TrainableModel`; :func:`train` does the rest:

* batches of one modality combination at a time (:class:`CombinationBatchSampler`);
* InfoNCE over cosine similarity (temperature 0.03) with in-batch negatives and the rows' K hard
  negatives (or K random other positives of the same combination when a row has none, GME's first
  stage); duplicates of a query's positive are masked out;
* GradCache when ``grad_cache_chunk`` is set: the batch size is not bounded by memory;
* AdamW, linear warm-up (6 %) then linear decay, gradient clipping;
* checkpoints (trainable weights + optimizer + scheduler + step + RNG) and exact resume;
* validation Recall@1/5 before training and after every epoch, a loss / score plot (PNG), and a
  JSON report; the final model is saved in a folder its family's loader (and ``load_embedder``) reads.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd
import torch
from pydantic import Field
from tqdm.auto import tqdm

from gme_data.errors import InvalidInputError
from gme_data.records import Item
from gme_data.stage_config import StageConfig, with_changes
from gme_data.training.evaluation import evaluate_retrieval
from gme_data.training.gradcache import grad_cache_step
from gme_data.training.losses import duplicate_mask, info_nce
from gme_data.training.rows import TrainRow, table_rows
from gme_data.training.sampler import CombinationBatchSampler
from gme_data.training.state_io import load_state, save_state, state_files

#: Optimizer + scheduler + RNG state of a checkpoint: ``optimizer.safetensors`` + ``optimizer.json``.
OPTIMIZER_STATE = "optimizer"
#: A chunk handed to :meth:`TrainableModel.embed`: items, role, one instruction per item.
Chunk = tuple[list[Item], str, list[str | None]]


@runtime_checkable
class TrainableModel(Protocol):
    """What :func:`train` needs from a model family.

    Optional: ``prepare_chunk(items, role, instructions) -> prepared`` and
    ``embed_prepared(prepared) -> Tensor``; when present, GradCache preprocesses each chunk once
    instead of once per pass.
    """

    family: str

    def trainable_parameters(self) -> list[torch.nn.Parameter]: ...

    def embed(self, items: Sequence[Item], role: str, instructions: Sequence[str | None]) -> torch.Tensor:
        """``[n, d]`` L2-normalised, differentiable when grad is enabled."""
        ...

    def prepare(self, rows: Sequence[TrainRow]) -> None:
        """Called once before training with every row (train and validation); e.g. to cache."""
        ...

    def set_train(self, mode: bool) -> None: ...

    def as_embedder(self) -> Any:
        """The current model behind the embedder protocol (for validation)."""
        ...

    def save_trainable(self, path: Path) -> None:
        """Trainable weights only (checkpoints)."""
        ...

    def load_trainable(self, path: Path) -> None: ...

    def save(self, path: Path, extra: dict[str, Any] | None = None) -> None:
        """A folder the family's loader turns back into an embedder."""
        ...


class TrainConfig(StageConfig):
    """Training hyper-parameters (GME defaults where the paper gives them)."""

    epochs: int = Field(default=1, description="Passes over the training split")
    batch_size: int = Field(default=32, description="Queries per batch (one modality combination per batch)")
    lr: float = Field(default=1e-4, description="Learning rate (GME LoRA: 1e-4)")
    weight_decay: float = 0.0
    warmup_ratio: float = Field(default=0.06, description="Linear warm-up share (GME: 6%)")
    temperature: float = Field(default=0.03, description="InfoNCE temperature (GME: 0.03)")
    n_negatives: int = Field(default=8, description="Hard negatives per query (GME: 8)")
    random_negatives: bool = True
    grad_cache_chunk: int | None = Field(default=None, description="GradCache chunk size (None = whole batch "
                                                                   "at once)")
    max_grad_norm: float | None = 1.0
    max_steps: int | None = Field(default=None, description="Stop after this many steps (None = all epochs)")
    seed: int = Field(default=0, description="Seed of batching and random negatives")
    eval_ks: tuple[int, ...] = (1, 5)
    eval_batch_size: int = 32
    eval_before: bool = True
    checkpoint_every: int | None = None
    keep_checkpoints: int = 2
    show_progress: bool = False

    def model_post_init(self, _context: Any) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise InvalidInputError(f"train config: epochs and batch_size must be >= 1 "
                                    f"(got {self.epochs}, {self.batch_size})")
        if self.lr <= 0 or self.temperature <= 0:
            raise InvalidInputError(f"train config: lr and temperature must be > 0 (got {self.lr}, "
                                    f"{self.temperature})")
        if not 0 <= self.warmup_ratio < 1:
            raise InvalidInputError(f"train config: warmup_ratio must be in [0, 1), got {self.warmup_ratio}")


@dataclass
class TrainState:
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    loss_curve: list[dict[str, float]] = field(default_factory=list)
    val_curve: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


def linear_schedule(total_steps: int, warmup_ratio: float):
    """LambdaLR factor: linear warm-up over ``warmup_ratio`` of the steps, then linear decay to 0."""
    warmup = int(math.ceil(total_steps * warmup_ratio))

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return factor


def _batch_inputs(rows: Sequence[TrainRow], batch: list[int], cfg: TrainConfig, pools: dict[str, list[int]],
                  rng: np.random.Generator) -> tuple[Chunk, Chunk, list[Hashable], list[Hashable]]:
    brows = [rows[i] for i in batch]
    q_items = [r.query for r in brows]
    q_ins = [r.instruction for r in brows]
    c_items = [r.positive for r in brows]
    pos_keys = [r.pos_key for r in brows]
    c_keys = list(pos_keys)
    for i, r in zip(batch, brows, strict=True):
        if r.negatives:
            negs, keys = r.negatives[:cfg.n_negatives], r.neg_keys[:cfg.n_negatives]
        elif cfg.random_negatives and cfg.n_negatives > 0:
            pool = pools.get(r.combination, [])
            negs, keys = [], []
            for j in rng.permutation(len(pool))[: cfg.n_negatives * 4].tolist():
                other = rows[pool[j]]
                if pool[j] == i or other.pos_key == r.pos_key or other.pos_key in keys:
                    continue
                negs.append(other.positive)
                keys.append(other.pos_key)
                if len(negs) >= cfg.n_negatives:
                    break
        else:
            negs, keys = [], []
        c_items.extend(negs)
        c_keys.extend(keys)
    return (q_items, "query", q_ins), (c_items, "candidate", [None] * len(c_items)), pos_keys, c_keys


def _split_chunk(chunk: Chunk, size: int) -> list[Chunk]:
    items, role, ins = chunk
    return [(list(items[s:s + size]), role, list(ins[s:s + size])) for s in range(0, len(items), size)]


def contrastive_step(model: TrainableModel, q_chunk: Chunk, c_chunk: Chunk, pos_keys: list[Hashable],
                     c_keys: list[Hashable], temperature: float, grad_cache_chunk: int | None) -> float:
    """Forward + backward of one batch (gradients accumulate into the model); returns the loss."""
    mask = duplicate_mask(pos_keys, c_keys)

    def loss_fn(q: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return info_nce(q, c, temperature, mask=mask)

    def embed(chunk: Chunk) -> torch.Tensor:
        return model.embed(*chunk)

    n_items = len(q_chunk[0]) + len(c_chunk[0])
    if grad_cache_chunk is None or grad_cache_chunk >= n_items:
        loss = loss_fn(embed(q_chunk), embed(c_chunk))
        loss.backward()
        return float(loss.detach())
    q_parts, c_parts = _split_chunk(q_chunk, grad_cache_chunk), _split_chunk(c_chunk, grad_cache_chunk)
    prepare = getattr(model, "prepare_chunk", None)
    if prepare is not None:  # preprocess each chunk once, not once per GradCache pass
        q_parts = [prepare(*c) for c in q_parts]
        c_parts = [prepare(*c) for c in c_parts]
        embed = model.embed_prepared  # type: ignore[attr-defined]
    loss = grad_cache_step(embed, q_parts, c_parts, loss_fn)
    return float(loss)


def _rng_state() -> dict[str, Any]:
    st = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _save_checkpoint(out: Path, model: TrainableModel, opt: torch.optim.Optimizer, sched: Any,
                     state: TrainState, cfg: TrainConfig) -> Path:
    ckdir = out / "checkpoints"
    path = ckdir / f"step-{state.step:07d}"
    tmp = ckdir / f".tmp-step-{state.step:07d}"
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / "trainable").mkdir(parents=True)
    model.save_trainable(tmp / "trainable")
    save_state({"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "rng": _rng_state()},
               tmp, OPTIMIZER_STATE)
    (tmp / "state.json").write_text(json.dumps({**asdict(state), "config": cfg.as_dict()}, default=str))
    if path.exists():
        shutil.rmtree(path)
    tmp.rename(path)
    olds = sorted(p for p in ckdir.glob("step-*") if p.is_dir())
    for old in olds[: max(0, len(olds) - cfg.keep_checkpoints)]:
        shutil.rmtree(old, ignore_errors=True)
    return path


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest complete checkpoint under ``output_dir/checkpoints`` (None if there is none)."""
    cks = sorted(p for p in (Path(output_dir) / "checkpoints").glob("step-*") if (p / "state.json").is_file())
    return cks[-1] if cks else None


def _load_checkpoint(path: Path, model: TrainableModel, opt: torch.optim.Optimizer, sched: Any) -> TrainState:
    if not (path / "state.json").is_file():
        raise InvalidInputError(f"checkpoint {path}: no state.json (not a checkpoint folder)")
    if not state_files(path, OPTIMIZER_STATE)[0].is_file() and (path / "optimizer.pt").is_file():
        raise InvalidInputError(
            f"checkpoint {path}: written by an older gme_data (optimizer.pt, a pickle, which is never loaded "
            "because unpickling runs code); delete the folder or train without resume")
    blob = load_state(path, OPTIMIZER_STATE)
    if not isinstance(blob, dict) or not {"optimizer", "scheduler", "rng"} <= set(blob) \
            or not isinstance(blob["rng"], dict) or "torch" not in blob["rng"]:
        raise InvalidInputError(f"checkpoint {path}: {OPTIMIZER_STATE}.json lacks optimizer / scheduler / rng")
    raw = _read_train_state(path / "state.json")
    model.load_trainable(path / "trainable")
    try:
        opt.load_state_dict(blob["optimizer"])
        sched.load_state_dict(blob["scheduler"])
        torch.set_rng_state(blob["rng"]["torch"])
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise InvalidInputError(f"checkpoint {path}: optimizer state does not fit this model ({exc})") from exc
    if "cuda" in blob["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(blob["rng"]["cuda"])
    return TrainState(**raw)


def _read_train_state(path: Path) -> dict[str, Any]:
    """``state.json`` -> the :class:`TrainState` fields (unknown keys refused, types checked)."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError(f"{path}: unreadable ({exc})") from exc
    if not isinstance(raw, dict):
        raise InvalidInputError(f"{path}: expected a JSON object")
    raw.pop("config", None)
    allowed = {f.name for f in fields(TrainState)}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise InvalidInputError(f"{path}: unknown keys {unknown} (allowed: {sorted(allowed)})")
    for key in ("step", "epoch", "batch_in_epoch"):
        if key in raw and (not isinstance(raw[key], int) or isinstance(raw[key], bool) or raw[key] < 0):
            raise InvalidInputError(f"{path}: {key} must be a non-negative integer, got {raw[key]!r}")
    return raw


def _evaluate(model: TrainableModel, rows: list[TrainRow], cfg: TrainConfig, state: TrainState,
              label: str) -> dict[str, Any] | None:
    if not rows:
        return None
    model.set_train(False)
    with torch.no_grad():
        res = evaluate_retrieval(model.as_embedder(), rows, cfg.eval_ks, cfg.eval_batch_size)
    entry = {"epoch": state.epoch, "step": state.step, "label": label,
             **{k: v for k, v in res.items() if k.startswith(("recall@", "macro_recall@"))},
             "per_combination": res["per_combination"]}
    state.val_curve.append(entry)
    return entry


def plot_training(state: TrainState | dict[str, Any], path: str | Path, title: str = "training") -> Path:
    """Loss per step and validation Recall@k per evaluation, side by side, as a PNG."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    st = asdict(state) if isinstance(state, TrainState) else state
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    losses = st["loss_curve"]
    if losses:
        a.plot([x["step"] for x in losses], [x["loss"] for x in losses], lw=1, label="loss")
        if len(losses) >= 10:
            w = max(2, len(losses) // 20)
            sm = np.convolve([x["loss"] for x in losses], np.ones(w) / w, mode="valid")
            a.plot([x["step"] for x in losses][w - 1:], sm, lw=2, label=f"mean of {w}")
    a.set_xlabel("step")
    a.set_ylabel("InfoNCE loss")
    a.set_title(f"{title}: loss")
    a.legend(loc="upper right")
    vals = st["val_curve"]
    for key in sorted({k for v in vals for k in v if k.startswith("recall@")}):
        b.plot([v["step"] for v in vals], [v[key] for v in vals], marker="o", label=key)
    b.set_xlabel("step")
    b.set_ylabel("validation recall")
    b.set_ylim(0, 1.02)
    b.set_title(f"{title}: validation")
    if vals:
        b.legend(loc="lower right")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def train(model: TrainableModel, table: pd.DataFrame | Sequence[TrainRow], output_dir: str | Path,
          config: TrainConfig | None = None, resume: str | Path | bool | None = None,
          stop_after_steps: int | None = None, **overrides: Any) -> dict[str, Any]:
    """Train ``model`` on ``table`` (rows with ``split`` train/validation; no split = all train).

    ``resume``: a checkpoint folder, or True for the newest one under ``output_dir``.
    ``stop_after_steps``: stop (after checkpointing) once this global step is reached, without
    changing the schedule (used to simulate interruption). Returns the training report (also written
    to ``output_dir/report.json``); the trained model is in ``output_dir/model``.
    """
    cfg = config or TrainConfig()
    if overrides:
        cfg = with_changes(cfg, **overrides)
    t0 = time.monotonic()
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = table_rows(table) if isinstance(table, pd.DataFrame) else list(table)
    train_rows = [r for r in rows if r.split != "validation"]
    val_rows = [r for r in rows if r.split == "validation"]
    if not train_rows:
        raise InvalidInputError("training table has no 'train' rows")
    torch.manual_seed(cfg.seed)
    model.prepare(rows)
    sampler = CombinationBatchSampler([r.combination for r in train_rows], cfg.batch_size, seed=cfg.seed)
    pools: dict[str, list[int]] = {}
    for i, r in enumerate(train_rows):
        pools.setdefault(r.combination, []).append(i)
    per_epoch = len(sampler)
    total = per_epoch * cfg.epochs if cfg.max_steps is None else min(cfg.max_steps, per_epoch * cfg.epochs)
    params = [p for p in model.trainable_parameters() if p.requires_grad]
    if not params:
        raise InvalidInputError(f"model family {model.family!r} has no trainable parameters")
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, linear_schedule(total, cfg.warmup_ratio))
    state = TrainState()
    resumed_from = None
    if resume:
        ck = latest_checkpoint(out) if resume is True else Path(resume)
        if ck is not None:
            state = _load_checkpoint(ck, model, opt, sched)
            resumed_from = str(ck)
    if resumed_from is None:
        # a fresh run owns its output folder: stale checkpoints must not be resumed later
        shutil.rmtree(out / "checkpoints", ignore_errors=True)
        if cfg.eval_before:
            _evaluate(model, val_rows, cfg, state, "before")
    last_ck = None
    bar = tqdm(total=total, initial=state.step, desc=f"train {model.family}", disable=not cfg.show_progress)
    stopped = False
    while state.step < total and state.epoch < cfg.epochs and not stopped:
        batches = sampler.batches(state.epoch)
        model.set_train(True)
        for bi in range(state.batch_in_epoch, len(batches)):
            rng = np.random.default_rng([cfg.seed, state.epoch, bi])
            q_chunk, c_chunk, pos_keys, c_keys = _batch_inputs(train_rows, batches[bi], cfg, pools, rng)
            opt.zero_grad(set_to_none=True)
            loss = contrastive_step(model, q_chunk, c_chunk, pos_keys, c_keys, cfg.temperature, cfg.grad_cache_chunk)
            if cfg.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            opt.step()
            sched.step()
            state.step += 1
            state.batch_in_epoch = bi + 1
            state.loss_curve.append({"step": state.step, "loss": loss, "lr": sched.get_last_lr()[0],
                                     "combination": train_rows[batches[bi][0]].combination})
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}")
            done = state.step >= total
            if state.batch_in_epoch >= len(batches):
                state.epoch += 1
                state.batch_in_epoch = 0
                _evaluate(model, val_rows, cfg, state, f"epoch {state.epoch}")
                model.set_train(True)
            elif done:
                _evaluate(model, val_rows, cfg, state, f"step {state.step}")
            stop_now = stop_after_steps is not None and state.step >= stop_after_steps
            if (cfg.checkpoint_every and state.step % cfg.checkpoint_every == 0) or done or stop_now \
                    or state.batch_in_epoch == 0:
                last_ck = _save_checkpoint(out, model, opt, sched, state, cfg)
            if done or stop_now:
                stopped = stop_now and not done
                break
    bar.close()
    model.set_train(False)
    state.seconds += time.monotonic() - t0
    finished = state.step >= total or state.epoch >= cfg.epochs
    report: dict[str, Any] = {
        "family": model.family,
        "finished": finished,
        "steps": state.step,
        "total_steps": total,
        "epochs_done": state.epoch,
        "n_train": len(train_rows),
        "n_validation": len(val_rows),
        "combinations": {c: len(v) for c, v in sorted(pools.items())},
        "loss_first": state.loss_curve[0]["loss"] if state.loss_curve else None,
        "loss_last": state.loss_curve[-1]["loss"] if state.loss_curve else None,
        "loss_curve": state.loss_curve,
        "val_curve": state.val_curve,
        "val_before": state.val_curve[0] if state.val_curve and state.val_curve[0]["label"] == "before" else None,
        "val_final": state.val_curve[-1] if state.val_curve else None,
        "resumed_from": resumed_from,
        "last_checkpoint": str(last_ck) if last_ck else (str(latest_checkpoint(out)) if latest_checkpoint(out) else None),
        "seconds": round(state.seconds, 2),
        "config": cfg.as_dict(),
    }
    report["plot"] = str(plot_training(state, out / "training.png", model.family))
    if finished:
        model.save(out / "model", extra={"val_final": report["val_final"], "steps": state.step})
        report["model_dir"] = str(out / "model")
    (out / "report.json").write_text(json.dumps(report, indent=1, default=str))
    return report
