"""``umrb_eval``: UMRB (or the bundled local suite) for the trained model beside its base model."""


import dagster as dg
import pandas as pd
from pydantic import Field

from assets.common import OWNERS, as_json, finish_stage, image_data_url, md_table
from dagster_project import pools
from dagster_project.io_manager import ParquetIOManager
from dagster_project.resources import EmbedderResource, LineageResource, WorkbenchResource
from gme_data.evaluation.api import evaluate_beside_base
from gme_data.lineage import StageOutput
from gme_data.records import stable_id
from gme_data.tables import dataset_rows


class UmrbEvalConfig(dg.Config):
    suite: str = Field(default="local", description="'local' (bundled, offline), 'umrb-partial' or 'umrb'")
    tasks: list[str] = Field(default_factory=list, description="Restrict to tasks, e.g. ['T->I', 'IT->T']")
    datasets: list[str] = Field(default_factory=list, description="Restrict to dataset slugs")
    data_root: str = Field(default="", description="Local UMRB data root; '' = <GME_DATA_HOME>/umrb")
    compare_base: bool = Field(default=True, description="Also evaluate the base embedder, side by side")
    top_k: int = Field(default=100, description="Candidates retrieved per query")
    min_rows: int = Field(default=1, description="Gate: fewest dataset scores")


SCORE_COLUMNS = ["model", "dataset", "task", "category", "metric", "score", "num_queries", "num_candidates"]


@dg.asset(
    group_name="evaluation",
    owners=OWNERS,
    pool=pools.GPU,
    tags={"stage": "evaluation"},
    kinds={"python", "duckdb"},
    check_specs=[dg.AssetCheckSpec("quality_gate", asset="umrb_eval", blocking=True,
                                   description="Great Expectations suite quality/suites/umrb_eval.json: "
                                               "dataset names present, scores in [0, 100]")],
    description=(
        "UMRB evaluation of the trained gme_model beside its base model and the published GME-2B/7B and "
        "CLIP-SF scores: per-dataset scores x100 (NDCG@k / Recall@k as UMRB lists them), task, category "
        "and overall means; markdown table, bar chart and DuckDB tables. Suite 'local' runs offline. Datasets "
        "already scored for the same model by umrb_dataset_eval partitions are reused, not evaluated again."
    ),
)
def umrb_eval(
    context: dg.AssetExecutionContext,
    config: UmrbEvalConfig,
    gme_model: dict,
    embedder: EmbedderResource,
    workbench: WorkbenchResource,
    lineage: LineageResource,
    io_manager: dg.ResourceParam[ParquetIOManager],
):
    out_dir = workbench.path("evaluation", context.run_id[:8])
    # The base is the resource's embedder, exactly as the model was trained on it.
    result, base, paths = evaluate_beside_base(
        gme_model["model_dir"], out_dir, base=embedder.load() if config.compare_base else None,
        **workbench.evaluation_caches(), suite=config.suite,
        tasks=config.tasks or None, datasets=config.datasets or None,
        data_root=config.data_root or str(workbench.path("umrb")),
        db_path=str(workbench.root() / "umrb.duckdb"), top_k=config.top_k,
    )
    rows = dataset_rows(result, "gme_model") + (dataset_rows(base, "base") if base is not None else [])
    table = pd.DataFrame(rows, columns=SCORE_COLUMNS)
    table.insert(0, "id", [stable_id("score", m, d) for m, d in zip(table["model"], table["dataset"], strict=True)])
    output = StageOutput()
    for r in table.to_dict("records"):
        output.keep(r["id"], "umrb_score", parents=[gme_model["model_dir"]] if r["model"] == "gme_model" else [],
                    stage="umrb_eval", score=r["score"], dataset=r["dataset"], model=r["model"])
    wide = table.pivot_table(index=["task", "dataset"], columns="model", values="score").reset_index()
    metadata = {
        "overall": float(result.overall),
        "failed_datasets": as_json(result.failed),
        "report": dg.MetadataValue.md(paths["markdown"].read_text()),
        "chart": dg.MetadataValue.md(f"![UMRB scores]({image_data_url(paths['chart'])})"),
        "scores": dg.MetadataValue.md(md_table(wide.round(2), max_rows=60)),
        "results_json": dg.MetadataValue.path(str(paths["results"])),
        "duckdb": dg.MetadataValue.md(f"`{workbench.root() / 'umrb.duckdb'}`: `SELECT * FROM umrb_results`"),
    }
    if base is not None:
        metadata["overall_base"] = float(table[table.model == "base"]["score"].mean())
    yield from finish_stage(
        context, table, output, io_manager=io_manager, lineage=lineage, workbench=workbench,
        gate_params={"min_rows": config.min_rows, "max_rows": 100_000},
        metadata=metadata, report_extra={"suite": config.suite, "overall": result.overall},
    )
