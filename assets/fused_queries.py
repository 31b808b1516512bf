"""``fused_queries``: attach the entity's image (retrieved from the image pool) to rewritten queries."""

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
from dagster_project.partitions import source_shards
from dagster_project.resources import EmbedderResource, ImagePoolResource, LineageResource, WorkbenchResource
from gme_data.filtering import FusedConfig, build_fused_queries
from gme_data.generation.entity_images import EntityImageGenerator, ImageGenConfig
from gme_data.pool import ImagePool, PoolConfig
from gme_data.stage_speed import StageClock


class FusedQueriesConfig(dg.Config):
    top_k: int = Field(default=5, description="Pool images retrieved per entity (all recorded in lineage)")
    rule: str = Field(default="top1", description="'top1', 'top1_above_threshold' or 'prefer_source_image'")
    image_score_threshold: float = Field(default=-1.0, description="For top1_above_threshold; <0 = "
                                         "the embedder's default from gme_data.filtering")
    query_template: str = Field(default="{entity}", description="Text sent to the pool ({entity}, {title})")
    emit_it_it: bool = Field(default=True, description="Also emit IT->IT samples when the paragraph has an image")
    generate_entity_images: bool = Field(default=False, description="Generate an entity image with an "
                                         "OpenAI-compatible images endpoint when the pool is empty or its best "
                                         "image scores below image_gen_threshold (GME used FLUX.1-dev)")
    image_gen_base_url: str = Field(default="", description="Images endpoint, e.g. http://localhost:8000/v1")
    image_gen_model: str = Field(default="dall-e-2", description="Text-to-image model served by the endpoint")
    image_gen_api_key_env: str = Field(default="OPENAI_API_KEY", description="Environment variable holding the "
                                       "key (only names on the operator's GME_DATA_LLM_API_KEY_ENVS allow-list)")
    image_gen_size: str = Field(default="512x512", description="Generated image size, WIDTHxHEIGHT")
    image_gen_seed: int = Field(default=0, description="Seed sent with each request (part of the cache key)")
    image_gen_threshold: float = Field(default=-1.0, description="Generate when the best pool score is below "
                                       "this; <0 = the embedder's image-score threshold")
    image_gen_price_per_image: float = Field(default=0.0, description="Cost accounting: price per generated image")
    min_rows: int = Field(default=1, description="Gate: fewest rows")
    max_rows: int = Field(default=10_000_000, description="Gate: most rows")


def entity_image_generator(config: FusedQueriesConfig, workbench: WorkbenchResource) -> EntityImageGenerator | None:
    """The configured image generator (images in the workbench's store, its cache under cache/), or None."""
    if not config.generate_entity_images:
        return None
    gen_cfg = ImageGenConfig(
        enabled=True, base_url=config.image_gen_base_url, model=config.image_gen_model,
        api_key_env=config.image_gen_api_key_env, size=config.image_gen_size, seed=config.image_gen_seed,
        threshold=config.image_gen_threshold if config.image_gen_threshold >= 0 else None,
        price_per_image=config.image_gen_price_per_image)
    return EntityImageGenerator(gen_cfg, workbench.image_store(), workbench.cache_dir())


def entity_image_generator_public(config: FusedQueriesConfig) -> dict:
    """The image-generation settings as recorded in metadata (URL credentials masked)."""
    from gme_data.redaction import redact_url

    return {"base_url": redact_url(config.image_gen_base_url), "model": config.image_gen_model,
            "size": config.image_gen_size, "seed": config.image_gen_seed,
            "threshold": config.image_gen_threshold, "price_per_image": config.image_gen_price_per_image}


def pair_key(df: pd.DataFrame, q_text: str, q_image: str, p_text: str, p_image: str) -> pd.Series:
    """One string per (query, positive) pair, for the uniqueness expectation."""
    cols = [df[c].fillna("").astype(str) for c in (q_text, q_image, p_text, p_image)]
    return cols[0] + "\x1f" + cols[1] + "\x1f" + cols[2] + "\x1f" + cols[3]


@dg.asset(
    partitions_def=source_shards,
    group_name="synthesis",
    owners=OWNERS,
    pool=pools.IMAGE_POOL_INDEX,
    tags={"stage": "fusion"},
    kinds={"python", "parquet", "faiss"},
    check_specs=[gate_spec("fused_queries", "unique ids, query text present, known combinations, "
                                            "image-text scores in range, row-count bounds"),
                 drift_spec("fused_queries")],
    description=(
        "Fused (image + text) queries: each generically rewritten query gets its entity's image, retrieved "
        "top-k from the persisted image pool (faiss) by entity name with the configured embedder; T->T "
        "and T->I queries pass through as their own combinations. Retrieved ids and scores go to lineage. "
        "Optionally (off by default) an entity image is generated by an OpenAI-compatible images endpoint when "
        "the pool has no good one; generated vs retrieved counts are in the report."
    ),
)
def fused_queries(
    context: dg.AssetExecutionContext,
    config: FusedQueriesConfig,
    generated_queries: pd.DataFrame,
    candidates: pd.DataFrame,
    embedder: EmbedderResource,
    image_pool: ImagePoolResource,
    workbench: WorkbenchResource,
    lineage: LineageResource,
):
    clock = StageClock()  # items/s and vector-cache hits of this stage
    model = embedder.load()
    thresholds = {"default": config.image_score_threshold} if config.image_score_threshold >= 0 else None
    if thresholds is None and getattr(model, "family", None) in ("clip", "siglip"):
        thresholds = {"default": float(model.image_score_threshold)}  # SigLIP: its sigmoid's 50% point
    cfg_kwargs = {"top_k": config.top_k, "rule": config.rule, "query_template": config.query_template,
                  "emit_it_it": config.emit_it_it}
    if thresholds:
        cfg_kwargs["image_score_thresholds"] = thresholds
    with image_pool.locked():
        pool = ImagePool(image_pool.path(), model, PoolConfig(batch_size=image_pool.batch_size))
        added = pool.add(candidates)
        for src in image_pool.extra_sources:
            added_extra = pool.add(src)
            context.log.info(f"image pool: {src}: {added_extra.as_dict()}")
        generator = entity_image_generator(config, workbench)
        try:
            result = build_fused_queries(generated_queries, candidates, pool, FusedConfig(**cfg_kwargs),
                                         generator=generator)
        finally:
            if generator is not None:
                generator.close()
    df = result.table
    rep = result.report.to_metadata()
    combos = df["combination"].value_counts().rename_axis("combination").reset_index(name="n") if len(df) else None
    fused_rows = df[df["query_image"].notna()].to_dict("records") if len(df) else []
    metadata = {
        "embedder": model.name,
        "pool_size": len(pool),
        "pool_added": as_json(added.as_dict()),
        "by_combination": dg.MetadataValue.md(md_table(combos) if combos is not None else "_none_"),
        "fused_gallery": dg.MetadataValue.md(gallery_md(fused_rows, "query_image", "query_text")),
        "entity_images": as_json(rep["entity_images"]),
        "report": as_json(rep),
    }
    if rep["image_generation"] is not None:
        metadata["image_generation"] = as_json({**rep["image_generation"],
                                                "config": entity_image_generator_public(config)})
    stage_speed = clock.metadata(len(df))
    yield from finish_stage(
        context, "fused_queries", df, result.lineage, lineage, workbench,
        gate_params={"min_rows": config.min_rows, "max_rows": config.max_rows},
        metadata={**metadata, **stage_speed}, report_extra=rep,
        thresholds={"image_score": config.image_score_threshold if config.rule == "top1_above_threshold"
                    and config.image_score_threshold >= 0 else None},
        inputs=generated_queries, domains=domains_of(df, candidates),
    )
