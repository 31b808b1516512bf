"""``umrb_dataset_eval``: one UMRB (or local-suite) dataset per partition, trained model beside its base.

Backfilling this asset over the ``umrb_dataset`` partitions evaluates datasets as separate runs (in
parallel, on any executor). Every partition writes its per-dataset result into the shared result
store ``<GME_DATA_HOME>/evaluation/results`` that ``umrb_eval`` also reads, so a later ``umrb_eval``
over the same datasets and model reuses them instead of evaluating again; the scores themselves are
one Parquet shard per dataset (``read_parquet('<storage>/umrb_dataset_eval/*.parquet')``).
"""

import dagster as dg
import pandas as pd
from pydantic import Field

from assets.common import OWNERS, finish_stage, gate_spec, md_table
from dagster_project import pools
from dagster_project.io_manager import ParquetIOManager
from dagster_project.partitions import umrb_datasets
from dagster_project.resources import EmbedderResource, LineageResource, WorkbenchResource
from gme_data.evaluation.api import evaluate_beside_base
from gme_data.evaluation.registry import get_spec
from gme_data.lineage import StageOutput
from gme_data.records import stable_id
from gme_data.tables import dataset_rows


class UmrbDatasetEvalConfig(dg.Config):
    data_root: str = Field(default="", description="Local UMRB data root; '' = <GME_DATA_HOME>/umrb "
                           "(the local suite is built under <data_root>/local)")
    compare_base: bool = Field(default=True, description="Also evaluate the base embedder on this dataset")
    top_k: int = Field(default=100, description="Candidates retrieved per query")


@dg.asset(
    partitions_def=umrb_datasets,
    group_name="evaluation_datasets",
    owners=OWNERS,
    pool=pools.GPU,
    tags={"stage": "evaluation"},
    kinds={"python", "parquet"},
    check_specs=[gate_spec("umrb_dataset_eval", "the partition's dataset scored for every model, "
                                                "scores in [0, 100], queries and candidates present")],
    description=(
        "One evaluation dataset per partition (the 10 bundled local datasets, then UMRB's 47): the trained "
        "gme_model and its base model, every metric x100 plus the dataset's UMRB headline metric. Backfill "
        "over partitions to evaluate datasets as parallel runs; umrb_eval reuses these results."
    ),
)
def umrb_dataset_eval(
    context: dg.AssetExecutionContext,
    config: UmrbDatasetEvalConfig,
    gme_model: dict,
    embedder: EmbedderResource,
    workbench: WorkbenchResource,
    lineage: LineageResource,
    io_manager: dg.ResourceParam[ParquetIOManager],
):
    slug = context.partition_key
    spec = get_spec(slug)
    data_root = config.data_root or str(workbench.path("umrb"))
    out_dir = workbench.path("evaluation", "datasets", slug, context.run_id[:8])
    context.log.info(f"{slug}: {spec.task} ({spec.category}), headline {spec.metric}; data root {data_root}")
    result, base, paths = evaluate_beside_base(
        gme_model["model_dir"], out_dir, base=embedder.load() if config.compare_base else None,
        **workbench.evaluation_caches(), datasets=[slug], data_root=data_root, top_k=config.top_k, on_error="raise")
    rows = dataset_rows(result, "gme_model") + (dataset_rows(base, "base") if base is not None else [])
    table = pd.DataFrame(rows)
    table.insert(0, "id", [stable_id("dataset-score", r["model_name"], slug) for r in rows])
    output = StageOutput()
    for r in rows:
        output.keep(stable_id("dataset-score", r["model_name"], slug), "umrb_dataset_score",
                    parents=[gme_model["model_dir"]] if r["model"] == "gme_model" else [],
                    stage="umrb_dataset_eval", dataset=slug, model=r["model_name"], score=r["score"])
    metric_cols = [c for c in table.columns if c.startswith("m_")]
    view = table[["model", "score", *metric_cols]].rename(columns=lambda c: c[2:].replace("_at_", "@")
                                                          if c.startswith("m_") else c)
    metadata = {
        "dataset": slug,
        "task": spec.task,
        "category": spec.category,
        "headline_metric": spec.metric,
        "score_gme_model": float(table.loc[table.model == "gme_model", "score"].iloc[0]),
        "num_queries": int(table["num_queries"].iloc[0]),
        "num_candidates": int(table["num_candidates"].iloc[0]),
        "scores": dg.MetadataValue.md(md_table(view.round(2))),
        "results_json": dg.MetadataValue.path(str(paths["results"])),
        "shards_query": dg.MetadataValue.md(
            "```sql\nSELECT dataset, model, metric, score FROM read_parquet('<storage>/umrb_dataset_eval/*.parquet')"
            " ORDER BY dataset, model;\n```"),
    }
    if base is not None:
        metadata["score_base"] = float(table.loc[table.model == "base", "score"].iloc[0])
    yield from finish_stage(
        context, table, output, io_manager=io_manager, lineage=lineage, workbench=workbench,
        gate_params={"n_models": 2 if base is not None else 1}, derive=lambda df: df.assign(_expected_dataset=slug),
        metadata=metadata, report_extra={"dataset": slug, "task": spec.task},
    )
