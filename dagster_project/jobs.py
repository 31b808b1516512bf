"""Jobs (one per workflow), the inbox sensor and the periodic evaluation schedule."""

from __future__ import annotations

import time
from pathlib import Path

import dagster as dg

from dagster_project.catalog import SourceCatalogResource, spec_for_path
from dagster_project.partitions import domains, source_shards, umrb_datasets

synthesis_job = dg.define_asset_job(
    "synthesis_job",
    selection=dg.AssetSelection.groups("synthesis"),
    partitions_def=source_shards,
    description="Full synthesis for one source shard: raw_corpus -> candidates -> generated_queries -> "
                "fused_queries -> filtered_samples, each gated by its quality check.",
)

training_eval_job = dg.define_asset_job(
    "training_eval_job",
    selection=dg.AssetSelection.groups("training", "evaluation"),
    description="Everything after synthesis over all shards: mining, mixture, two-stage training, UMRB eval.",
)

mine_train_job = dg.define_asset_job(
    "mine_train_job",
    selection=dg.AssetSelection.groups("training"),
    description="mine -> train -> re-mine with the trained model -> train (GME's two-stage hard negatives).",
)

evaluation_job = dg.define_asset_job(
    "evaluation_job",
    selection=dg.AssetSelection.groups("evaluation"),
    description="UMRB evaluation only (the trained model beside its base model and published scores).",
)

umrb_datasets_job = dg.define_asset_job(
    "umrb_datasets_job",
    selection=dg.AssetSelection.assets("umrb_dataset_eval"),
    partitions_def=umrb_datasets,
    description="Evaluate one dataset per run (local suite + UMRB's 47), gme_model beside its base. Backfill "
                "over a selection of umrb_dataset partitions to evaluate them in parallel runs.",
)

domain_datasets_job = dg.define_asset_job(
    "domain_datasets_job",
    selection=dg.AssetSelection.assets("domain_datasets"),
    partitions_def=domains,
    description="Refresh the per-domain release slices; backfill over the domain partitions after new shards land.",
)


exports_job = dg.define_asset_job(
    "exports_job",
    selection=dg.AssetSelection.assets("training_set_hf", "training_set_swift"),
    description="Export training_set as a Hugging Face dataset with its data card (pushed to the hub when "
                "configured) and in ms-swift's embedding format; see each asset's metadata for the folder.",
)

domain_exports_job = dg.define_asset_job(
    "domain_exports_job",
    selection=dg.AssetSelection.assets("domain_datasets_hf"),
    partitions_def=domains,
    description="Export one domain_datasets slice per run as a Hugging Face dataset with its data card.",
)


def register_shards(instance: dg.DagsterInstance, only: list[str] | None = None) -> list[str]:
    """Add every known shard (sample + inbox) as a ``source_shard`` partition; return the ones to run."""
    known = sorted(SourceCatalogResource().shards())
    wanted = only or known
    unknown = [s for s in wanted if s not in known]
    if unknown:
        raise dg.DagsterInvariantViolationError(f"unknown shard(s) {unknown}; known: {known}")
    existing = set(instance.get_dynamic_partitions(source_shards.name))
    new = [s for s in known if s not in existing]
    if new:
        instance.add_dynamic_partitions(source_shards.name, new)
    return wanted


@dg.sensor(
    job=synthesis_job,
    minimum_interval_seconds=30,
    description="Starts synthesis_job for each new shard dropped into the inbox folder "
                "(JSONL/CSV/Parquet manifest, image folder, or <name>.source.json).",
    default_status=dg.DefaultSensorStatus.STOPPED,
)
def inbox_sensor(context: dg.SensorEvaluationContext, catalog: SourceCatalogResource):
    settle_s = 2.0
    existing = set(context.instance.get_dynamic_partitions(source_shards.name))
    new_keys, requests, broken = [], [], []
    for entry in sorted(catalog.inbox().iterdir()):
        try:
            if time.time() - entry.stat().st_mtime < settle_s:
                continue  # still being written
            spec = spec_for_path(Path(entry))
        except Exception as exc:  # noqa: BLE001 - one unusable entry must not stop the others
            broken.append(f"{entry.name}: {exc}")
            context.log.warning(f"inbox entry skipped: {entry.name}: {exc}")
            continue
        if spec is None or spec.shard_name in existing or spec.shard_name in new_keys:
            continue
        new_keys.append(spec.shard_name)
        requests.append(dg.RunRequest(run_key=f"{spec.shard_name}:{entry.stat().st_mtime_ns}",
                                      partition_key=spec.shard_name, tags={"source": str(entry)}))
    skipped = f"; {len(broken)} inbox entr{'y' if len(broken) == 1 else 'ies'} skipped: " + " | ".join(broken) \
        if broken else ""
    if not new_keys:
        return dg.SkipReason(f"no new shards in {catalog.inbox()}{skipped}"[:4000])
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[source_shards.build_add_request(new_keys)],
    )


evaluation_schedule = dg.ScheduleDefinition(
    job=evaluation_job,
    cron_schedule="0 3 * * 1",
    description="Weekly UMRB evaluation of the current gme_model (Mondays 03:00).",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
