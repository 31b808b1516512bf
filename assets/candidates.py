"""``candidates``: clean, dedup, domain-classify and balance one shard's paragraphs."""


import dagster as dg
import pandas as pd
from pydantic import Field

from assets.common import OWNERS, as_json, finish_stage, gallery_md, gate_spec, md_table
from dagster_project import pools
from dagster_project.io_manager import ParquetIOManager
from dagster_project.partitions import source_shards
from dagster_project.resources import LineageResource, WorkbenchResource
from dagster_project.stage_config import library_config, stage_config_class
from gme_data.candidates import DOMAINS, CandidatesConfig, build_candidates
from gme_data.stage_speed import StageClock

#: The classifier and balance fields of :class:`CandidatesConfig` (declared there) plus the gate's bounds.
CandidatesAssetConfig = stage_config_class(
    "CandidatesAssetConfig", CandidatesConfig, module=__name__,
    fields=("threshold", "phash_distance", "max_per_domain", "balance_ratio"),
    extra={"min_rows": (int, Field(default=1, description="Gate: fewest candidates a shard may yield")),
           "max_rows": (int, Field(default=5_000_000, description="Gate: most candidates a shard may yield")),
           "min_text_chars": (int, Field(default=20, description="Gate: shortest paragraph")),
           "max_text_chars": (int, Field(default=20_000, description="Gate: longest paragraph")),
           "max_domain_kl": (float, Field(default=0.5, description="Gate: KL(domain distribution || uniform) "
                                                                   "bound"))},
)


def _domain_partition(df: pd.DataFrame) -> dict:
    present = sorted(df["domain"].dropna().unique().tolist()) if len(df) else list(DOMAINS)
    return {"values": present, "weights": [1.0 / len(present)] * len(present)}


@dg.asset(
    partitions_def=source_shards,
    group_name="synthesis",
    owners=OWNERS,
    pool=pools.lineage_pool(),
    tags={"stage": "candidates"},
    kinds={"python", "parquet"},
    check_specs=[gate_spec("candidates", "schema, nulls, lengths, 15 domains, confidence, uniqueness, "
                                         "domain balance (KL), row-count bounds")],
    description=(
        "Candidate paragraphs (with their images): normalised text, exact-text and perceptual-hash "
        "dedup, zero-shot domain classification into GME's 15 domains (all-MiniLM-L6-v2, int8 ONNX; kept "
        "at confidence >= threshold), balanced across domains."
    ),
)
def candidates(
    context: dg.AssetExecutionContext,
    config: CandidatesAssetConfig,
    raw_corpus: pd.DataFrame,
    workbench: WorkbenchResource,
    lineage: LineageResource,
    io_manager: dg.ResourceParam[ParquetIOManager],
):
    clock = StageClock()  # items/s and vector-cache hits of this stage
    df, output, report = build_candidates(raw_corpus, library_config(config, CandidatesConfig))
    counts = df["domain"].value_counts().rename_axis("domain").reset_index(name="n") if len(df) else None
    metadata = {
        "domain_counts": dg.MetadataValue.md(md_table(counts) if counts is not None else "_none_"),
        "report": as_json(report),
        "gallery": dg.MetadataValue.md(gallery_md(df.to_dict("records"), "image", "title")),
    }
    stage_speed = clock.metadata(len(df))
    yield from finish_stage(
        context, df, output, io_manager=io_manager, lineage=lineage, workbench=workbench,
        gate_params={"min_rows": config.min_rows, "max_rows": config.max_rows,
                     "min_text_chars": config.min_text_chars, "max_text_chars": config.max_text_chars,
                     "domains": list(DOMAINS), "min_confidence": config.threshold,
                     "domain_partition": _domain_partition(df), "max_domain_kl": config.max_domain_kl},
        metadata={**metadata, **stage_speed}, report_extra=report,
    )
