"""``raw_corpus``: read one source shard (manifest, image folder, HF dataset, Wikipedia-style JSONL)."""


import dagster as dg
from pydantic import Field

from assets.common import OWNERS, finish_stage, gate_spec
from dagster_project import pools
from dagster_project.catalog import SourceCatalogResource
from dagster_project.io_manager import ParquetIOManager
from dagster_project.partitions import source_shards
from dagster_project.resources import LineageResource, WorkbenchResource
from gme_data.sources import ReadPolicy, read_source
from gme_data.stage_speed import StageClock


class RawCorpusConfig(dg.Config):
    min_rows: int = Field(default=1, description="Gate: fewest rows a shard may yield")
    max_rows: int = Field(default=5_000_000, description="Gate: most rows a shard may yield")
    limit: int = Field(default=0, description="Read at most this many rows (0 = all); for trial runs")
    max_text_chars: int = Field(default=0, description="Drop rows whose text is longer, as field_too_long "
                                "(0 = GME_DATA_MAX_TEXT_CHARS, default 20,000: the candidates gate's bound)")
    max_field_chars: int = Field(default=0, description="Drop rows whose title / url / id is longer "
                                 "(0 = GME_DATA_MAX_FIELD_CHARS, default 4,096)")


@dg.asset(
    partitions_def=source_shards,
    group_name="synthesis",
    owners=OWNERS,
    pool=pools.lineage_pool(),
    tags={"stage": "sources"},
    kinds={"python", "parquet"},
    check_specs=[gate_spec("raw_corpus", "schema, unique ids, row-count bounds, PNG image paths")],
    description=(
        "Raw paragraphs and images of one source shard, decoded safely (decompression-bomb guard, "
        "EXIF orientation, RGB) into the content-addressed image store. Unreadable rows are dropped "
        "with their reason into lineage; the run goes on."
    ),
)
def raw_corpus(
    context: dg.AssetExecutionContext,
    config: RawCorpusConfig,
    catalog: SourceCatalogResource,
    workbench: WorkbenchResource,
    lineage: LineageResource,
    io_manager: dg.ResourceParam[ParquetIOManager],
):
    clock = StageClock()  # items/s and vector-cache hits of this stage
    shard = context.partition_key
    spec = catalog.spec(shard)
    if config.limit:
        from dataclasses import replace

        spec = replace(spec, limit=config.limit)
    context.log.info(f"reading shard {shard}: {spec.kind} {spec.path}")
    caps = {"max_text_chars": config.max_text_chars, "max_field_chars": config.max_field_chars}
    policy = ReadPolicy.from_env(**{k: v for k, v in caps.items() if v})
    df, output = read_source(spec, workbench.image_store(), policy=policy)
    df = df.reset_index(drop=True)
    stage_speed = clock.metadata(len(df))
    yield from finish_stage(
        context, df, output, io_manager=io_manager, lineage=lineage, workbench=workbench,
        gate_params={"min_rows": config.min_rows, "max_rows": config.max_rows},
        metadata={"source_kind": spec.kind, "source_path": str(spec.path), "license": spec.license or "not stated",
                  "images": int(df["image"].notna().sum()) if "image" in df else 0, **stage_speed},
        report_extra={"source": str(spec.path), "kind": spec.kind, "source_name": spec.source_name,
                      "license": spec.license},
    )

