"""Run one variant of the grid: derive its training data, train per seed, evaluate, cache by content.

Only a variant's difference is recomputed: the shared ``training_set`` is used as is unless the variant
overrides the mix (rebuilt in process from the shared ``hard_negatives``) or mining (re-mined from the
shared ``filtered_samples``). Trained models and evaluation results live in a content-addressed store::

    <store>/models/<key>/   the trainer's folder (model/, report.json) + done.json once complete
    <store>/evals/<key>/    the evaluation's reports + scores.json once complete

where a model's key hashes its family, model options, effective TrainConfig (seed included), the base
embedder's settings and the training table's content; an evaluation's key hashes the model's key and
the suite selection. Re-running the grid after adding a variant trains and evaluates only that one.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from filelock import FileLock

from gme_data.errors import InvalidInputError
from gme_data.experiments.grid import Grid, Variant, base_config
from gme_data.experiments.overrides import config_values, derive_config

#: Bump when the meaning of a cached model or score changes (folds into every key).
STORE_VERSION = 1
NEG_LISTS = ("neg_ids", "neg_texts", "neg_images", "neg_scores", "neg_is_random")
RULES_PREFIX = "offline-rules"


@dataclass
class SharedInputs:
    """The shared upstream materializations a variant starts from."""

    training_set: pd.DataFrame
    hard_negatives: pd.DataFrame | None = None
    filtered_samples: pd.DataFrame | None = None
    query_generators: tuple[str, ...] = ()  # the ``model`` values of generated_queries


@dataclass
class Backend:
    """What trains and evaluates: the family and the base embedder it trains on."""

    family: str  # "adapter" or "gme-lora"
    base_model: str = ""  # "" = offline default; a GME checkpoint name for gme-lora
    base_options: dict[str, Any] = field(default_factory=dict)  # e.g. the offline default's OCR settings
    device: str | None = None
    dtype: str | None = None
    embedding_cache_dir: str | None = None
    data_root: str | None = None  # evaluation data root (the local suite is built under it)


@dataclass
class VariantData:
    table: pd.DataFrame
    data_hash: str
    recomputed: list[str]


@dataclass
class VariantRun:
    """What one variant's materialization did: per-(seed, dataset) scores and the cache accounting."""

    scores: pd.DataFrame
    trained: list[int] = field(default_factory=list)  # seeds trained in this run
    train_cache_hits: list[int] = field(default_factory=list)
    evaluated: list[int] = field(default_factory=list)
    eval_cache_hits: list[int] = field(default_factory=list)
    recomputed: list[str] = field(default_factory=list)
    model_dirs: dict[int, str] = field(default_factory=dict)
    seconds: float = 0.0


def _digest(obj: Any) -> str:
    blob = json.dumps(obj, sort_keys=True, default=_plain)
    return hashlib.sha1(blob.encode()).hexdigest()


def _plain(o: Any) -> Any:
    return o.tolist() if hasattr(o, "tolist") else str(o)


def table_hash(table: pd.DataFrame) -> str:
    """Content hash of a table (columns sorted, rows in order)."""
    cols = sorted(table.columns)
    return _digest([cols, table[cols].to_dict("split")["data"]])


# --------------------------------------------------------------------------- data
def _check_generators(variant: Variant, generators: tuple[str, ...], where: str) -> None:
    want = variant.queries
    if want == "any":
        return
    if not generators:
        raise InvalidInputError(f"{where}: data.queries={want!r} needs the generated_queries table (none loaded)")
    rules = [g for g in generators if str(g).startswith(RULES_PREFIX)]
    ok = len(rules) == len(generators) if want == "rules" else not rules
    if not ok:
        hint = ("materialize synthesis with GME_DATA_LLM_BACKEND=offline-rules" if want == "rules" else
                "materialize synthesis with the local LLM backend (GME_DATA_LLM_BACKEND=local, the default "
                "outside the tests)")
        raise InvalidInputError(f"{where}: data.queries={want!r} but the materialized generated_queries were "
                                f"written by {sorted(set(map(str, generators)))}; {hint}, then run this partition")


def variant_data(variant: Variant, inputs: SharedInputs, mining_embedder: Callable[[], Any] | None = None,
                 where: str = "variant") -> VariantData:
    """The variant's training table, recomputed in process only where the variant overrides it."""
    from gme_data.training import build_training_set

    _check_generators(variant, inputs.query_generators, where)
    recomputed: list[str] = []
    negatives = inputs.hard_negatives
    if variant.mining:
        if inputs.filtered_samples is None or mining_embedder is None:
            raise InvalidInputError(f"{where}: mining overrides need filtered_samples and an embedder")
        from gme_data.mining import mine_hard_negatives

        cfg = derive_config(base_config("mining"), variant.mining, f"{where}: mining")
        negatives = mine_hard_negatives(inputs.filtered_samples, None, mining_embedder(), cfg).table
        recomputed.append("hard_negatives")
    if variant.mining or variant.training_set:
        if negatives is None:
            raise InvalidInputError(f"{where}: training_set overrides need the hard_negatives table")
        cfg = derive_config(base_config("training_set"), variant.training_set, f"{where}: training_set")
        table = build_training_set(negatives, cfg).table
        recomputed.append("training_set")
    else:
        table = inputs.training_set
    if not variant.keeps_hard_negatives:
        table = table.copy()
        for col in NEG_LISTS:
            if col in table.columns:
                table[col] = [[] for _ in range(len(table))]
        recomputed.append("negatives dropped")
    if "split" in table.columns and not (table["split"] != "validation").any():
        raise InvalidInputError(f"{where}: the variant's training table has no train rows")
    return VariantData(table.reset_index(drop=True), table_hash(table), recomputed)


# --------------------------------------------------------------------------- model
def resolve_family(variant: Variant, backend: Backend) -> str:
    family = variant.model.get("family", "auto")
    return backend.family if family == "auto" else family


def base_options(variant: Variant, backend: Backend, family: str, where: str) -> dict[str, Any]:
    """Base embedder options: the backend's plus the variant's pooling / instruction switches."""
    pooling = variant.model.get("pooling", "mean")
    instructions = bool(variant.model.get("query_instructions", False))
    if family == "gme-lora":
        if pooling != "last" or not instructions:
            raise InvalidInputError(f"{where}: gme-lora always pools the last token and uses instructions "
                                    "(pooling/query_instructions switches exist for the adapter family only)")
        return dict(backend.base_options)
    opts = dict(backend.base_options)
    if backend.base_model and (pooling != "mean" or instructions):
        raise InvalidInputError(f"{where}: model.pooling / model.query_instructions are switches of the offline "
                                f"default embedder, not of {backend.base_model!r}; set pooling: mean and "
                                "query_instructions: false in the grid for this base")
    if pooling != "mean":
        opts["pooling"] = pooling
    if instructions:
        opts["query_instructions"] = True
    return opts


_BASES: dict[tuple, Any] = {}


def load_base(backend: Backend, options: dict[str, Any]) -> Any:
    """The frozen base embedder for these options (one per process and option set)."""
    from gme_data import load_embedder

    key = (backend.base_model, tuple(sorted(options.items())), backend.embedding_cache_dir)
    if key not in _BASES:
        extra = {"cache_dir": backend.embedding_cache_dir} if backend.embedding_cache_dir else {}
        _BASES[key] = load_embedder(backend.base_model or None, **options, **extra)
    return _BASES[key]


def model_key(variant: Variant, backend: Backend, data_hash: str, seed: int, where: str) -> tuple[str, dict]:
    """The content key of a trained model and the effective settings it hashes."""
    family = resolve_family(variant, backend)
    cfg = derive_config(base_config("train"), {**variant.train, "seed": seed}, f"{where}: train")
    spec = {"store_version": STORE_VERSION, "family": family, "base_model": backend.base_model,
            "base_options": base_options(variant, backend, family, where),
            "rank": variant.model.get("rank", 8), "per_role": variant.model.get("per_role", True),
            "train": config_values(cfg), "data": data_hash, "seed": seed}
    if family == "gme-lora":
        spec.update(device=backend.device, dtype=backend.dtype)
    return _digest(spec), spec


def train_model(variant: Variant, backend: Backend, table: pd.DataFrame, spec: dict, out_dir: Path) -> dict:
    """Train with the project's entry point (:func:`gme_data.training.train_embedder`)."""
    from gme_data.training import train_embedder

    family = spec["family"]
    cfg = derive_config(base_config("train"), {**variant.train, "seed": spec["seed"]}, f"variant {variant.name}")
    if family == "gme-lora":
        base: Any = backend.base_model
        options: dict[str, Any] = {"r": spec["rank"] or 8, "device": backend.device, "dtype": backend.dtype,
                                   **spec["base_options"]}
    else:
        base = load_base(backend, spec["base_options"])
        options = {"base_spec": "offline-default" if not backend.base_model else backend.base_model,
                   "hidden": spec["rank"], "per_role": spec["per_role"]}
    return train_embedder(table, out_dir, family=family, base=base, config=cfg, family_options=options)


def _cached(folder: Path, marker: str) -> dict | None:
    try:
        return json.loads((folder / marker).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def ensure_model(variant: Variant, backend: Backend, data: VariantData, seed: int, store: Path,
                 where: str) -> tuple[str, str, bool, dict]:
    """(model key, model folder, trained now?, training summary); trains only on a cache miss."""
    key, spec = model_key(variant, backend, data.data_hash, seed, where)
    folder = store / "models" / key
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock", timeout=3600):
        done = _cached(folder, "done.json")
        if done is not None and (folder / "model").is_dir():
            return key, str(folder / "model"), False, done
        shutil.rmtree(folder, ignore_errors=True)  # an interrupted attempt: start afresh
        report = train_model(variant, backend, data.table, spec, folder)
        if not report.get("model_dir"):
            raise InvalidInputError(f"{where}: training stopped before finishing ({report.get('steps')} steps)")
        done = {"key": key, "spec": spec, "variant": variant.name, "steps": report["steps"],
                "seconds": report["seconds"], "loss_last": report.get("loss_last")}
        (folder / "done.json").write_text(json.dumps(done, indent=1, default=str))
        return key, str(folder / "model"), True, done


def ensure_scores(model_key_: str, model_dir: str, grid: Grid, backend: Backend, store: Path) -> tuple[list[dict], bool]:
    """Per-dataset scores of a model on the grid's suite; evaluated only on a cache miss."""
    from gme_data.evaluation.api import umrb_eval

    key = _digest({"store_version": STORE_VERSION, "model": model_key_, "suite": grid.suite,
                   "datasets": sorted(grid.datasets)})
    folder = store / "evals" / key
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder) + ".lock", timeout=3600):
        done = _cached(folder, "scores.json")
        if done is not None:
            return done["scores"], False
        shutil.rmtree(folder, ignore_errors=True)
        result, _ = umrb_eval(model_dir, folder, suite=grid.suite, datasets=list(grid.datasets) or None,
                              data_root=backend.data_root, show_progress=False, on_error="raise",
                              embedder_options={"cache_dir": backend.embedding_cache_dir}
                              if backend.embedding_cache_dir else None)
        if not result.datasets:
            raise InvalidInputError(f"evaluation of {model_dir} on {grid.suite}: no dataset scored")
        scores = [{"dataset": d.dataset, "task": d.task, "metric": d.metric_key, "score": float(d.main_score)}
                  for d in result.datasets.values()]
        (folder / "scores.json").write_text(json.dumps({"model_key": model_key_, "scores": scores}, indent=1))
        return scores, True


def run_variant(grid: Grid, name: str, inputs: SharedInputs, backend: Backend, store: str | Path,
                mining_embedder: Callable[[], Any] | None = None,
                log: Callable[[str], None] = lambda _m: None) -> VariantRun:
    """Train (per seed) and evaluate one variant; returns its scores and what was cached."""
    t0 = time.monotonic()
    variant = grid.variant(name)
    where = f"{grid.path}: variant {name!r}"
    store = Path(store)
    data = variant_data(variant, inputs, mining_embedder, where)
    log(f"{name}: {len(data.table)} training rows (data {data.data_hash[:12]}; recomputed: "
        f"{data.recomputed or 'nothing'})")
    run = VariantRun(scores=pd.DataFrame(), recomputed=data.recomputed)
    rows: list[dict] = []
    for seed in grid.seeds:
        key, model_dir, trained, summary = ensure_model(variant, backend, data, seed, store, where)
        (run.trained if trained else run.train_cache_hits).append(seed)
        run.model_dirs[seed] = model_dir
        scores, evaluated = ensure_scores(key, model_dir, grid, backend, store)
        (run.evaluated if evaluated else run.eval_cache_hits).append(seed)
        log(f"{name} seed {seed}: {'trained' if trained else 'cached model'}, "
            f"{'evaluated' if evaluated else 'cached scores'} ({key[:12]})")
        for s in scores:
            rows.append({"variant": name, "seed": seed, **s, "model_key": key, "data_hash": data.data_hash,
                         "trained_now": trained, "evaluated_now": evaluated,
                         "train_seconds": float(summary.get("seconds") or 0.0), "n_train_rows": len(data.table)})
    run.scores = pd.DataFrame(rows)
    run.seconds = round(time.monotonic() - t0, 2)
    return run
