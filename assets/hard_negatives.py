"""``hard_negatives`` (stage 1, configured embedder) and ``hard_negatives_stage2`` (the stage-1 model)."""

import dagster as dg
import pandas as pd
from pydantic import Field

from assets.common import OWNERS, as_json, drift_spec, finish_stage, gate_spec
from dagster_project import pools
from dagster_project.io_manager import ParquetIOManager
from dagster_project.resources import EmbedderResource, LineageResource, WorkbenchResource
from dagster_project.stage_config import library_config, stage_config_class
from gme_data import load_embedder
from gme_data.mining import MiningConfig, mine_hard_negatives

#: The mining fields of :class:`MiningConfig` (declared there) plus the gate's bounds. ``min_negatives``
#: defaults to 0 here: samples whose candidates all fall inside the false-negative margin are kept
#: (the trainer gives them random negatives, GME's first stage), so no modality is lost.
MiningAssetConfig = stage_config_class(
    "MiningAssetConfig", MiningConfig, module=__name__,
    fields=("k", "top_n", "margin", "max_score", "match_modality", "fill_random", "min_negatives", "seed"),
    defaults={"min_negatives": 0},
    extra={"min_rows": (int, Field(default=1, description="Gate: fewest samples")),
           "max_rows": (int, Field(default=50_000_000, description="Gate: most samples"))},
)


def mining_config(config: dg.Config, stage: str) -> MiningConfig:
    """The library config of a run (``min_negatives`` at most ``k``)."""
    min_negatives = None if config.min_negatives is None else min(config.min_negatives, config.k)
    return library_config(config, MiningConfig, stage=stage, show_progress=True, min_negatives=min_negatives)


def _derive(df: pd.DataFrame) -> pd.DataFrame:
    def n_negs(v) -> int:
        return 0 if v is None else len(list(v))

    def neg_is_pos(row) -> bool:
        ids = [] if row["neg_ids"] is None else [str(x) for x in row["neg_ids"]]
        return str(row.get("pos_id")) in ids

    df["_n_negatives"] = df["neg_ids"].map(n_negs) if len(df) else pd.Series(dtype=int)
    df["_negative_is_positive"] = df.apply(neg_is_pos, axis=1) if len(df) else pd.Series(dtype=bool)
    return df


def _run_mining(context: dg.AssetExecutionContext, samples: pd.DataFrame, embedder, config: MiningAssetConfig,
                io_manager: ParquetIOManager, lineage: LineageResource, workbench: WorkbenchResource, extra: dict):
    name = context.asset_key.to_user_string()
    cfg = mining_config(config, name)
    result = mine_hard_negatives(samples, None, embedder, cfg)
    stats = result.stats
    metadata = {"mined_with": str(getattr(embedder, "name", "?")), "mining_stats": as_json(stats), **extra}
    for key in ("mean_positive_rank", "false_negative_fraction", "mean_negative_score"):
        if isinstance(stats.get(key), (int, float)):
            metadata[key] = float(stats[key])
    yield from finish_stage(
        context, result.table, result.lineage, io_manager=io_manager, lineage=lineage, workbench=workbench,
        gate_params={"min_rows": config.min_rows, "max_rows": config.max_rows,
                     "min_negatives": cfg.required, "max_negatives": cfg.k},
        derive=_derive, metadata=metadata, report_extra=stats,
        thresholds={"hard_negative_margin": -config.margin}, inputs=samples,
    )


@dg.asset(
    group_name="training",
    owners=OWNERS,
    pool=pools.GPU,
    tags={"stage": "mining"},
    kinds={"python", "parquet", "faiss"},
    check_specs=[gate_spec("hard_negatives", "K negatives per sample, no negative equal to its positive, "
                                             "unique ids, row-count bounds"),
                 drift_spec("hard_negatives")],
    description=(
        "Stage-1 hard negatives for every filtered sample (all shards): top-N retrieval with the configured "
        "embedder over the positives pool, positives and likely false negatives (score within a margin "
        "of the positive) removed, K kept; random fill flagged."
    ),
)
def hard_negatives(
    context: dg.AssetExecutionContext,
    config: MiningAssetConfig,
    filtered_samples: pd.DataFrame,
    embedder: EmbedderResource,
    workbench: WorkbenchResource,
    lineage: LineageResource,
    io_manager: dg.ResourceParam[ParquetIOManager],
):
    model = embedder.load()
    yield from _run_mining(context, filtered_samples, model, config, io_manager, lineage, workbench, {"stage": 1})


@dg.asset(
    group_name="training",
    owners=OWNERS,
    pool=pools.GPU,
    tags={"stage": "mining"},
    kinds={"python", "parquet", "faiss"},
    check_specs=[gate_spec("hard_negatives_stage2", "K negatives per sample, no negative equal to its "
                                                    "positive, unique ids, row-count bounds"),
                 drift_spec("hard_negatives_stage2")],
    description=(
        "Stage-2 hard negatives (GME's two-stage mining): the training set re-mined with the stage-1 "
        "model; the split of every row is kept."
    ),
)
def hard_negatives_stage2(
    context: dg.AssetExecutionContext,
    config: MiningAssetConfig,
    training_set: pd.DataFrame,
    gme_model_stage1: dict,
    workbench: WorkbenchResource,
    lineage: LineageResource,
    io_manager: dg.ResourceParam[ParquetIOManager],
):
    model = load_embedder(gme_model_stage1["model_dir"], cache_dir=str(workbench.cache_dir() / "embeddings"))
    yield from _run_mining(context, training_set, model, config, io_manager, lineage, workbench,
                           {"stage": 2, "model_dir": gme_model_stage1["model_dir"]})
