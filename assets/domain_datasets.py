"""``domain_datasets``: the filtered samples of one candidate domain per partition, as a release slice.

GME balances its synthesized data over domains; operators review and publish it the same way. Each
partition joins every shard's ``filtered_samples`` to its positive's ``candidates`` row for the
domain, gates the slice (domain, ids, modality combinations, row bounds) and writes it as one
Parquet shard (``read_parquet('<storage>/domain_datasets/*.parquet')`` gives all domains) plus a
JSONL export. Backfill over the ``domain`` partitions to refresh every slice after new shards land.
"""

import dagster as dg
import pandas as pd
from pydantic import Field

from assets.common import OWNERS, finish_stage, gallery_md, gate_spec, md_table
from dagster_project import pools
from dagster_project.io_manager import ParquetIOManager
from dagster_project.partitions import domains
from dagster_project.resources import LineageResource, WorkbenchResource
from gme_data.lineage import StageOutput
from gme_data.records import COMBINATIONS


class DomainDatasetConfig(dg.Config):
    min_rows: int = Field(default=1, description="Gate: fewest samples in the domain")
    max_rows: int = Field(default=50_000_000, description="Gate: most samples in the domain")
    min_combinations: int = Field(default=1, description="Gate: fewest distinct modality combinations")
    export_jsonl: bool = Field(default=True, description="Also write <GME_DATA_HOME>/exports/domains/<domain>.jsonl")


def domain_slice(samples: pd.DataFrame, candidates: pd.DataFrame, domain: str) -> pd.DataFrame:
    """Samples whose positive candidate belongs to ``domain``, with ``domain`` and its confidence."""
    if samples.empty:
        return samples.assign(domain=pd.Series(dtype=str), domain_confidence=pd.Series(dtype=float))
    doms = candidates[["id", "domain", "domain_confidence"]].drop_duplicates("id").rename(columns={"id": "pos_id"})
    joined = samples.merge(doms, on="pos_id", how="left")
    return joined[joined["domain"] == domain].reset_index(drop=True)


@dg.asset(
    partitions_def=domains,
    group_name="domains",
    owners=OWNERS,
    pool=pools.lineage_pool(),
    tags={"stage": "release"},
    kinds={"python", "parquet"},
    ins={
        "filtered_samples": dg.AssetIn(partition_mapping=dg.AllPartitionMapping()),
        "candidates": dg.AssetIn(partition_mapping=dg.AllPartitionMapping()),
    },
    check_specs=[gate_spec("domain_datasets", "every row in the partition's domain, unique ids, known "
                                              "combinations, enough rows and combinations")],
    description=(
        "One candidate domain per partition: the filtered samples (all shards) whose positive belongs to it, "
        "with per-domain modality mix, gallery and JSONL export. Backfill over domains after new shards land."
    ),
)
def domain_datasets(
    context: dg.AssetExecutionContext,
    config: DomainDatasetConfig,
    filtered_samples: pd.DataFrame,
    candidates: pd.DataFrame,
    workbench: WorkbenchResource,
    lineage: LineageResource,
    io_manager: dg.ResourceParam[ParquetIOManager],
):
    domain = context.partition_key
    table = domain_slice(filtered_samples, candidates, domain)
    output = StageOutput()
    pos_ids = table["pos_id"] if "pos_id" in table.columns else [None] * len(table)
    for sid, comb, pos in zip(table["id"], table["combination"], pos_ids, strict=True):
        output.keep(f"dom-{sid}", "domain_sample", parents=[sid], stage="domain_datasets", domain=domain,
                    combination=comb, pos_id=pos)
    mix = (table["combination"].value_counts().reindex(list(COMBINATIONS), fill_value=0)
           .loc[lambda s: s > 0].rename_axis("combination").reset_index(name="samples"))
    metadata: dict = {
        "domain": domain,
        "samples": len(table),
        "share_of_all_samples": float(len(table) / max(len(filtered_samples), 1)),
        "combinations": dg.MetadataValue.md(md_table(mix)),
    }
    with_image = table[table["pos_image"].notna()] if "pos_image" in table else table.iloc[:0]
    if len(with_image):
        metadata["gallery"] = dg.MetadataValue.md(gallery_md(with_image.to_dict("records"), "pos_image",
                                                             "query_text", limit=4))
    if config.export_jsonl:
        path = workbench.path("exports", "domains") / f"{domain}.jsonl"
        tmp = path.with_suffix(".jsonl.tmp")
        table.to_json(tmp, orient="records", lines=True, force_ascii=False)
        tmp.replace(path)
        metadata["export"] = dg.MetadataValue.path(str(path))

    def derive(df: pd.DataFrame) -> pd.DataFrame:
        return df.assign(_expected_domain=domain, _n_combinations=df["combination"].nunique())

    yield from finish_stage(
        context, table, output, io_manager=io_manager, lineage=lineage, workbench=workbench,
        gate_params={"min_rows": config.min_rows, "max_rows": config.max_rows,
                     "min_combinations": config.min_combinations, "combinations": list(COMBINATIONS)},
        derive=derive, metadata=metadata, report_extra={"domain": domain, "samples": len(table)},
    )
