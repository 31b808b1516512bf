"""``training_set``: the modality-balanced mixture with a leak-free train/validation split, exported."""

import dagster as dg
import pandas as pd
from pydantic import Field

from assets.common import OWNERS, as_json, finish_stage, gate_spec, md_table
from dagster_project import pools
from dagster_project.io_manager import ParquetIOManager
from dagster_project.resources import LineageResource, WorkbenchResource
from dagster_project.stage_config import library_config, stage_config_class
from gme_data.records import COMBINATIONS
from gme_data.training import TrainingSetConfig, build_training_set, export_training_set, mixture_report
from gme_data.training.dataset import check_negatives_distinct

#: The mixture fields of :class:`TrainingSetConfig` (declared there) plus the gate's bounds.
TrainingSetAssetConfig = stage_config_class(
    "TrainingSetAssetConfig", TrainingSetConfig, module=__name__,
    fields=("ratios", "total", "tolerance", "validation_fraction", "seed"),
    extra={"min_rows": (int, Field(default=1, description="Gate: fewest rows")),
           "max_rows": (int, Field(default=50_000_000, description="Gate: most rows"))},
)


def _derive(ratios: dict[str, float] | None, tolerance: float):
    def derive(df: pd.DataFrame) -> pd.DataFrame:
        splits = df.groupby("source_id")["split"].nunique() if len(df) else pd.Series(dtype=int)
        leaked = set(splits[splits > 1].index)
        df["_source_in_both_splits"] = df["source_id"].isin(leaked)
        df["_negative_is_positive"] = [bool(check_negatives_distinct(df.iloc[[i]])) for i in range(len(df))]
        rep = mixture_report(df, ratios, tolerance) if len(df) else {"combinations": {}}
        err = {c: abs(v["all"]["share"] - v["all"]["target"]) for c, v in rep["combinations"].items()}
        df["_ratio_error"] = df["combination"].map(err).fillna(0.0)
        return df
    return derive


@dg.asset(
    group_name="training",
    owners=OWNERS,
    pool=pools.lineage_pool(),
    tags={"stage": "training_set"},
    kinds={"python", "parquet"},
    check_specs=[gate_spec("training_set", "mixture ratios within tolerance, no source document in both "
                                           "splits, every negative distinct from its positive")],
    description=(
        "The modality-balanced training mixture (T->T, I->I, T->I, I->T, T->IT, IT->T, IT->I, IT->IT) with "
        "configured ratios and a deterministic train/validation split by source document; exported as "
        "Parquet and JSONL (query, positive, negatives, instruction)."
    ),
)
def training_set(
    context: dg.AssetExecutionContext,
    config: TrainingSetAssetConfig,
    hard_negatives: pd.DataFrame,
    workbench: WorkbenchResource,
    lineage: LineageResource,
    io_manager: dg.ResourceParam[ParquetIOManager],
):
    unknown = [c for c in config.ratios or {} if c not in COMBINATIONS]
    if unknown:
        raise dg.Failure(f"training_set config: unknown combination(s) {unknown}; use {list(COMBINATIONS)}")
    ratios = dict(config.ratios or {}) or None  # {} = GME's balanced mix, as None
    result = build_training_set(hard_negatives, library_config(config, TrainingSetConfig, ratios=ratios))
    exported = export_training_set(result.table, workbench.path("exports", context.run_id[:8]))
    shares = pd.DataFrame([{"combination": c, "count": v["all"]["count"], "share": v["all"]["share"],
                            "target": v["all"]["target"]}
                           for c, v in result.report["mixture"].get("combinations", {}).items()])
    metadata = {
        "mixture": dg.MetadataValue.md(md_table(shares)),
        "split_sizes": as_json(result.report["split_sizes"]),
        "exports": as_json(exported),
        "report": as_json(result.report),
    }
    yield from finish_stage(
        context, result.table, result.lineage, io_manager=io_manager, lineage=lineage, workbench=workbench,
        gate_params={"min_rows": config.min_rows, "max_rows": config.max_rows, "ratio_tolerance": config.tolerance},
        derive=_derive(ratios, config.tolerance), metadata=metadata, report_extra=result.report,
    )
