"""``filtered_samples``: GME's filters (image-text score, consistency top-20, dedup, leak/length rules)."""

import dagster as dg
import pandas as pd
from pydantic import Field

from assets.common import (
    OWNERS,
    as_json,
    domains_of,
    drift_spec,
    finish_stage,
    gallery_md,
    gate_spec,
    md_table,
)
from dagster_project import pools
from dagster_project.io_manager import ParquetIOManager
from dagster_project.partitions import source_shards
from dagster_project.resources import EmbedderResource, LineageResource, WorkbenchResource
from dagster_project.stage_config import library_config, stage_config_class
from gme_data.filtering import FilterConfig, filter_samples
from gme_data.stage_speed import StageClock
from gme_data.tables import pair_key

#: The offline default (with OCR of text-bearing images, as EmbedderResource configures it) scores a
#: matching entity image ~0.97 and a wrong one ~0.3-0.4 on the sample (measured), so its cut sits between.
OFFLINE_IMAGE_SCORE_THRESHOLD = 0.5


#: The filter fields of :class:`FilterConfig` (declared there) plus the per-embedder threshold and the gate's bounds.
FilteredSamplesConfig = stage_config_class(
    "FilteredSamplesConfig", FilterConfig, module=__name__,
    fields=("consistency_model", "consistency_top_k", "dedup_text_threshold", "dedup_phash_max_distance",
            "min_query_chars", "max_query_chars"),
    extra={
        "image_score_threshold": (float | None, Field(default=None, description="Drop samples whose image-text "
                                  "score is below this; None = per embedder: 0.5 for the offline default with "
                                  "poster OCR, 0.2 for CLIP (GME's cut), a SigLIP checkpoint's own sigmoid 50% "
                                  "point (-bias/scale), else gme_data.filtering's table")),
        "min_kept_fraction": (float, Field(default=0.05, description="Gate: a filter run keeping less fails")),
        "max_kept_fraction": (float, Field(default=0.999, description="Gate: a filter run keeping everything fails")),
        "kept_fraction_min_samples": (int, Field(default=20, description="Gate: check the kept fraction only when "
                                      "at least this many samples came in (tiny shards say nothing)")),
        "min_rows": (int, Field(default=1, description="Gate: fewest samples")),
        "max_rows": (int, Field(default=10_000_000, description="Gate: most samples")),
    },
)


@dg.asset(
    partitions_def=source_shards,
    group_name="synthesis",
    owners=OWNERS,
    pool=pools.lineage_pool(),
    tags={"stage": "filtering"},
    kinds={"python", "parquet"},
    check_specs=[gate_spec("filtered_samples", "schema, known combinations, no duplicate (query, positive) "
                                               "pairs, kept fraction within bounds, row-count bounds"),
                 drift_spec("filtered_samples")],
    description=(
        "Training samples that pass GME's filters in order: image-text score threshold (per embedder), "
        "consistency (the positive in a text retriever's top 20), near-duplicate removal (embedding "
        "similarity + perceptual hash), answer/entity-leak and length rules. Every drop keeps its reason "
        "and score in lineage."
    ),
)
def filtered_samples(
    context: dg.AssetExecutionContext,
    config: FilteredSamplesConfig,
    fused_queries: pd.DataFrame,
    candidates: pd.DataFrame,
    embedder: EmbedderResource,
    workbench: WorkbenchResource,
    lineage: LineageResource,
    io_manager: dg.ResourceParam[ParquetIOManager],
):
    clock = StageClock()  # items/s and vector-cache hits of this stage
    threshold = config.image_score_threshold
    if threshold is None and embedder.is_offline() and embedder.ocr and embedder.ocr_min_boxes <= 1:
        threshold = OFFLINE_IMAGE_SCORE_THRESHOLD
    if threshold is None and embedder.is_clip_family():  # CLIP 0.2; SigLIP: its checkpoint's sigmoid 50% point
        threshold = float(embedder.load().image_score_threshold)
        context.log.info(f"image-text threshold {threshold:.3f} for {embedder.model}")
    fixed = {"image_score_thresholds": {"default": threshold}} if threshold is not None else {}
    result = filter_samples(fused_queries, candidates, library_config(config, FilterConfig, **fixed))
    df, rep = result.table, result.report.to_metadata()
    drops = pd.DataFrame({"filter": list(rep["drops_by_filter"]), "dropped": list(rep["drops_by_filter"].values())})
    kept_fraction = rep["fraction_kept"]
    lo, hi = config.min_kept_fraction, config.max_kept_fraction
    if rep["n_in"] < config.kept_fraction_min_samples:
        context.log.warning(f"only {rep['n_in']} samples in: kept-fraction bounds not applied "
                            f"(kept_fraction_min_samples={config.kept_fraction_min_samples})")
        lo, hi = 0.0, 1.0
    metadata = {
        "fraction_kept": float(kept_fraction),
        "drops_by_filter": dg.MetadataValue.md(md_table(drops)),
        "by_combination": as_json(rep["by_combination"]),
        "score_quantiles": as_json(rep["scores"]),
        "sample_gallery": dg.MetadataValue.md(gallery_md(rep.get("gallery", []), "query_image", "query_text")),
        "report": as_json({k: v for k, v in rep.items() if k != "gallery"}),
    }
    stage_speed = clock.metadata(len(df))
    yield from finish_stage(
        context, df, result.lineage, io_manager=io_manager, lineage=lineage, workbench=workbench,
        gate_params={"min_rows": config.min_rows, "max_rows": config.max_rows,
                     "min_kept_fraction": lo, "max_kept_fraction": hi},
        derive=lambda d: d.assign(_pair_key=pair_key(d, "query_text", "query_image", "pos_text", "pos_image"),
                                  _kept_fraction=kept_fraction),
        metadata={**metadata, **stage_speed}, report_extra={k: v for k, v in rep.items() if k != "gallery"},
        thresholds={"image_score": threshold if threshold is not None else next(iter(rep["thresholds"].values()), None),
                    "consistency_rank": config.consistency_top_k,
                    "dedup_similarity": config.dedup_text_threshold},
        inputs=fused_queries, domains=domains_of(df, candidates),
    )
