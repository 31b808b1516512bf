"""``experiment_grid[variant]`` (one partition per variant of the grid YAML) and ``ablation_report``.

Partitions are static, read from the grid file when the code location loads
(``$GME_DATA_EXPERIMENT_GRID`` or ``gme_data/experiments/ablations.yaml``): the file is the one source of
truth, a broken file stops the location from loading with an error naming the file and the variant,
and after an edit "Reload definitions" in the UI shows the new partitions. Each partition re-reads the
file when it runs, so an edited variant's overrides apply (its cache key changes with them).
"""

from pathlib import Path
from typing import Any, NamedTuple

import dagster as dg
import pandas as pd
from pydantic import Field

from assets.common import OWNERS, as_json, image_data_url, md_table
from dagster_project import pools
from dagster_project.data_versions import data_version
from dagster_project.report_server import report_url
from dagster_project.resources import EmbedderResource, WorkbenchResource
from gme_data.experiments.grid import Grid, load_grid
from gme_data.experiments.runner import Backend, SharedInputs, run_variant
from quality.ablation import write_ablation_report

_ALL = dg.AllPartitionMapping()


class ExperimentGridConfig(dg.Config):
    family: str | None = Field(default=None, description="unset = the adapter over the offline default (or a CLIP base) on "
                        "CPU, GME LoRA when the embedder resource names a GME checkpoint; 'adapter' / 'gme-lora' "
                        "force one (a variant's model.family wins)")
    store: str | None = Field(default=None, description="Content-addressed model / score store; unset = "
                       "<GME_DATA_HOME>/experiments/store")


def _backend(config: ExperimentGridConfig, embedder: EmbedderResource, workbench: WorkbenchResource) -> Backend:
    family = config.family or ("adapter" if embedder.is_offline() or embedder.is_clip_family() else "gme-lora")
    options: dict = {}
    if embedder.is_offline():
        options = {"ocr": embedder.ocr, "ocr_min_boxes": embedder.ocr_min_boxes, "ocr_min_chars": embedder.ocr_min_chars}
    elif family == "gme-lora":
        options = {"position_mode": embedder.position_mode}
    return Backend(family=family, base_model="" if embedder.is_offline() else embedder.model, base_options=options,
                   device=embedder.device or None, dtype=embedder.dtype or None,
                   embedding_cache_dir=str(workbench.cache_dir() / "embeddings"),
                   data_root=str(workbench.path("umrb")))


class GridDefinitions(NamedTuple):
    """The grid's partitions, its two assets and their jobs, built from one grid file."""

    grid: Grid
    partitions: dg.StaticPartitionsDefinition
    experiment_grid: dg.AssetsDefinition
    ablation_report: dg.AssetsDefinition
    experiment_grid_job: Any
    ablation_report_job: Any


def build_grid_definitions(path: str | Path | None = None) -> GridDefinitions:
    """Partitions (one per variant of the grid file at ``path``, default: :func:`grid_path`), assets, jobs."""
    loaded = load_grid(path)
    experiment_variants = dg.StaticPartitionsDefinition(loaded.variant_names)

    @dg.asset(
        group_name="experiments",
        owners=OWNERS,
        pool=pools.GPU,
        partitions_def=experiment_variants,
        tags={"stage": "experiments"},
        kinds={"python", "pytorch"},
        ins={"filtered_samples": dg.AssetIn(partition_mapping=_ALL),
             "generated_queries": dg.AssetIn(partition_mapping=_ALL)},
        description=(
            "One variant of the experiment grid (the paper's ablations): its training data derived from the shared "
            "training_set / hard_negatives / filtered_samples (recomputed in process only where the variant "
            "overrides them), one model per seed (the project's trainer) and the configured suite's scores. Models "
            "and scores are cached by effective config + data + seed: re-running the grid trains only new variants."
        ),
    )
    def experiment_grid(
        context: dg.AssetExecutionContext,
        config: ExperimentGridConfig,
        training_set: pd.DataFrame,
        hard_negatives: pd.DataFrame,
        filtered_samples: pd.DataFrame,
        generated_queries: pd.DataFrame,
        embedder: EmbedderResource,
        workbench: WorkbenchResource,
    ) -> dg.Output:
        grid = load_grid(loaded.path)  # the file as it is now: edited overrides apply, with new cache keys
        name = context.partition_key
        if name not in grid.variants:
            raise dg.Failure(f"variant {name!r} is no longer in {grid.path}; reload the code location")
        variant = grid.variants[name]
        backend = _backend(config, embedder, workbench)
        gens = tuple(generated_queries["model"].dropna().unique()) if "model" in generated_queries.columns else ()
        inputs = SharedInputs(training_set, hard_negatives, filtered_samples, gens)
        store = config.store or str(workbench.path("experiments", "store"))
        run = run_variant(grid, name, inputs, backend, store, mining_embedder=embedder.load, log=context.log.info)
        per_seed = run.scores.groupby("seed")["score"].mean()
        per_dataset = run.scores.pivot_table(index=["task", "dataset"], columns="seed", values="score").reset_index()
        meta = {
            "variant": name,
            "description": variant.description,
            "overrides": as_json(variant.overrides()),
            "paper_ablation": variant.paper or "-",
            "seeds": as_json(list(grid.seeds)),
            "mean_score": float(per_seed.mean()),
            "sd_over_seeds": float(per_seed.std(ddof=1)) if len(per_seed) > 1 else 0.0,
            "min_seed_score": float(per_seed.min()),
            "max_seed_score": float(per_seed.max()),
            "trained_seeds": as_json(run.trained),
            "train_cache_hits": len(run.train_cache_hits),
            "n_trained": len(run.trained),
            "eval_cache_hits": len(run.eval_cache_hits),
            "recomputed_inputs": as_json(run.recomputed),
            "model_dirs": as_json({str(k): v for k, v in run.model_dirs.items()}),
            "scores": dg.MetadataValue.md(md_table(per_dataset.round(2), max_rows=60)),
            "seconds": float(run.seconds),
            "store": dg.MetadataValue.path(store),
        }
        return dg.Output(run.scores, metadata=meta, data_version=data_version(run.scores[["seed", "dataset", "score",
                                                                                          "model_key"]]))


    @dg.asset(
        group_name="experiments",
        owners=OWNERS,
        tags={"stage": "experiments"},
        kinds={"python", "html"},
        ins={"experiment_grid": dg.AssetIn(partition_mapping=_ALL)},
        description=(
            "The ablation report over every materialized variant: per-task and mean scores, delta to baseline with "
            "the seed spread (mean ± sd, min..max), a noise label, the paper's published delta beside it and a bar "
            "chart of deltas with noise bands; linked as report_url."
        ),
    )
    def ablation_report(context: dg.AssetExecutionContext, experiment_grid: pd.DataFrame,
                        workbench: WorkbenchResource) -> dg.Output:
        grid = load_grid(loaded.path)
        scores = experiment_grid[experiment_grid["variant"].isin(grid.variant_names)]
        out = workbench.reports_dir() / context.run_id / "ablation"
        rep = write_ablation_report(
            scores, out, {n: v.description for n, v in grid.variants.items()},
            {n: v.paper for n, v in grid.variants.items()}, title=f"Ablations: {grid.name}",
            meta={"grid": grid.path, "suite": grid.suite, "seeds": list(grid.seeds), "run": context.run_id[:8]})
        meta = {
            "report_url": dg.MetadataValue.url(report_url(rep.html_path)),
            "table": dg.MetadataValue.md(rep.markdown),
            "variants": len(rep.table),
            "missing_variants": as_json(sorted(set(grid.variant_names) - set(rep.table["variant"]))),
        }
        if rep.chart_path is not None:
            meta["chart"] = dg.MetadataValue.md(f"![deltas to baseline]({image_data_url(rep.chart_path)})")
        return dg.Output(rep.table, metadata=meta, data_version=data_version(rep.table))


    experiment_grid_job = dg.define_asset_job(
        "experiment_grid_job",
        selection=dg.AssetSelection.assets("experiment_grid"),
        partitions_def=experiment_variants,
        description="Train and score one grid variant per run; backfill over the variants (one run each), then "
                    "materialize ablation_report.",
    )
    ablation_report_job = dg.define_asset_job(
        "ablation_report_job", selection=dg.AssetSelection.assets("ablation_report"),
        description="Rebuild the ablation report from every materialized experiment_grid partition.",
    )

    return GridDefinitions(loaded, experiment_variants, experiment_grid, ablation_report, experiment_grid_job,
                           ablation_report_job)


#: Built from $GME_DATA_EXPERIMENT_GRID or the bundled ablations.yaml when the code location loads.
_DEFS = build_grid_definitions()
GRID = _DEFS.grid
experiment_variants = _DEFS.partitions
experiment_grid = _DEFS.experiment_grid
ablation_report = _DEFS.ablation_report
experiment_grid_job = _DEFS.experiment_grid_job
ablation_report_job = _DEFS.ablation_report_job
