"""``gme_model_stage1`` and ``gme_model``: contrastive training (InfoNCE, hard negatives, LoRA on GME)."""

import json
from pathlib import Path

import dagster as dg
import pandas as pd
from pydantic import Field

from assets.common import OWNERS, as_json, image_data_url
from dagster_project import pools
from dagster_project.data_versions import data_version
from dagster_project.resources import EmbedderResource, WorkbenchResource
from dagster_project.stage_config import library_config, stage_config_class
from gme_data.records import stable_id
from gme_data.training.run import train_embedder
from gme_data.training.trainer import TrainConfig

#: The hyper-parameters of :class:`TrainConfig` (declared there; the asset trains longer and faster by
#: default: 3 epochs at 1e-3, as the adapter learns faster than GME's LoRA) plus the asset's own choices.
TrainAssetConfig = stage_config_class(
    "TrainAssetConfig", TrainConfig, module=__name__,
    fields=("epochs", "batch_size", "lr", "temperature", "n_negatives", "warmup_ratio", "grad_cache_chunk",
            "max_steps", "seed"),
    defaults={"epochs": 3, "lr": 1e-3},
    extra={
        "family": (str | None, Field(default=None, description="'adapter' (trainable head over the frozen "
                   "offline default; CPU) or 'gme-lora' (LoRA r=8 on a Qwen2-VL/GME checkpoint); None = adapter "
                   "for the offline embedder and CLIP / SigLIP bases, gme-lora otherwise")),
        "lora_r": (int, Field(default=8, description="LoRA rank for gme-lora (GME: 8)")),
        "max_image_tokens": (int, Field(default=1024, description="gme-lora: visual tokens per image in training")),
        "resume": (bool, Field(default=True, description="Continue from the newest checkpoint of this run's folder")),
    },
)


def _family(config: TrainAssetConfig, embedder: EmbedderResource) -> str:
    if config.family:
        return config.family
    # LoRA is for GME checkpoints; the offline default and CLIP / SigLIP bases train a residual adapter
    return "adapter" if embedder.is_offline() or embedder.is_clip_family() else "gme-lora"


def _train(context: dg.AssetExecutionContext, name: str, table: pd.DataFrame, config: TrainAssetConfig,
           embedder: EmbedderResource, workbench: WorkbenchResource, init_from: str | None) -> dg.Output:
    family = _family(config, embedder)
    # One folder per (inputs, settings): an interrupted run resumes there; new data starts afresh.
    run_key = stable_id(name, sorted(map(str, table["id"])), config.model_dump(), embedder.model_dump(), init_from)
    out_dir = workbench.path("models", name, run_key)
    family_options: dict = {}
    if family == "gme-lora":
        family_options = {"r": config.lora_r, "max_image_tokens": config.max_image_tokens,
                          "device": embedder.device or None, "dtype": embedder.dtype or None}
        base = embedder.model
    else:
        base = embedder.load()
        family_options = {"base_spec": embedder.model or "offline-default"}
    context.log.info(f"training {family} into {out_dir}")
    report = train_embedder(
        table, out_dir, family=family, base=base, init_from=init_from, family_options=family_options,
        resume=True if config.resume else None, config=library_config(config, TrainConfig, show_progress=True),
    )
    if not report.get("model_dir"):
        raise dg.Failure(f"{name}: training stopped before finishing ({report.get('steps')} steps); rerun to resume")
    val_before, val_final = report.get("val_before") or {}, report.get("val_final") or {}
    curve = [{"step": p.get("step"), "loss": round(float(p.get("loss", 0.0)), 4)} for p in report["loss_curve"]]
    meta = {
        "family": family,
        "model_dir": dg.MetadataValue.path(report["model_dir"]),
        "load_with": dg.MetadataValue.md(f"```python\ngme_data.load_embedder({report['model_dir']!r})\n```"),
        "steps": int(report["steps"]),
        "loss_first": float(report["loss_first"] or 0.0),
        "loss_last": float(report["loss_last"] or 0.0),
        "validation_before": as_json(val_before),
        "validation_after": as_json(val_final),
        "training_plot": dg.MetadataValue.path(report["plot"]),
        "training_curves": dg.MetadataValue.md(f"![loss and validation recall]({image_data_url(report['plot'])})"),
        "loss_curve": as_json(curve[-200:]),
        "seconds": float(report["seconds"]),
    }
    for key in ("recall@1", "recall@5"):
        if key in val_final and isinstance(val_final[key], (int, float)):
            meta[f"val_{key}"] = float(val_final[key])
    (Path(out_dir) / "asset_report.json").write_text(json.dumps(report, indent=1, default=str))
    value = {"model_dir": report["model_dir"], "family": family, "init_from": init_from,
             "val_before": val_before, "val_final": val_final, "steps": report["steps"]}
    return dg.Output(value, metadata=meta, data_version=data_version(value))  # the manifest's content


@dg.asset(
    group_name="training",
    owners=OWNERS,
    pool=pools.GPU,
    tags={"stage": "training"},
    kinds={"python", "pytorch"},
    description=(
        "Stage-1 model: contrastive training (InfoNCE over cosine, temperature 0.03, in-batch + K hard "
        "negatives, one modality combination per batch) on the training split; validation retrieval "
        "before/after and the loss curve as metadata."
    ),
)
def gme_model_stage1(
    context: dg.AssetExecutionContext,
    config: TrainAssetConfig,
    training_set: pd.DataFrame,
    embedder: EmbedderResource,
    workbench: WorkbenchResource,
) -> dg.Output:
    return _train(context, "gme_model_stage1", training_set, config, embedder, workbench, None)


@dg.asset(
    group_name="training",
    owners=OWNERS,
    pool=pools.GPU,
    tags={"stage": "training"},
    kinds={"python", "pytorch"},
    description=(
        "The trained GME embedder: stage 2 continues from the stage-1 model on negatives re-mined with it "
        "(GME's two-stage hard-negative recipe). Loads with gme_data.load_embedder(model_dir)."
    ),
)
def gme_model(
    context: dg.AssetExecutionContext,
    config: TrainAssetConfig,
    hard_negatives_stage2: pd.DataFrame,
    gme_model_stage1: dict,
    embedder: EmbedderResource,
    workbench: WorkbenchResource,
) -> dg.Output:
    return _train(context, "gme_model", hard_negatives_stage2, config, embedder, workbench,
                  gme_model_stage1["model_dir"])
