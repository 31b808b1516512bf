"""Exports for the tools that train and share the data: a Hugging Face dataset with its data card
(``training_set_hf``, ``domain_datasets_hf[domain]``) and ms-swift's embedding format
(``training_set_swift``). Each asset's metadata says where the files went; its check reads them back.
"""

from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
from pydantic import Field

from assets.common import OWNERS, as_json, md_table
from dagster_project.partitions import domains
from dagster_project.resources import LineageResource, WorkbenchResource
from gme_data.errors import GmeDataError
from gme_data.export.data_card import write_data_card
from gme_data.export.hf_dataset import HFExport, export_hf_dataset
from gme_data.export.hub import HubTarget, push_folder_to_hub
from gme_data.export.swift_format import export_swift_embedding, swift_train_command

READBACK = "export_reads_back"


class HFExportConfig(dg.Config):
    hub_repo_id: str = Field(default="", description="Hub dataset repo 'owner/name'; empty = save locally only")
    hub_token_env: str = Field(default="HF_TOKEN", description="Environment variable holding the hub token "
                               "(the token itself is never part of run config, logs or lineage)")
    hub_private: bool = Field(default=True, description="Create the hub repo as private")
    hub_endpoint: str = Field(default="", description="Hub endpoint; empty = huggingface_hub's default/HF_ENDPOINT")
    pretty_name: str = Field(default="", description="Card title; empty = 'gme_data <asset>'")


class SwiftExportConfig(dg.Config):
    gpus: int = Field(default=8, description="GPUs in the documented `swift sft` command")


def _lineage_location(store: Any) -> str:
    return str(getattr(store, "path", None) or getattr(store, "url", "") or "lineage.duckdb")


def _hf_export(context: dg.AssetExecutionContext, config: HFExportConfig, table: pd.DataFrame, out: Path,
               lineage: LineageResource, asset_key: str, partition: str | None) -> tuple[dict, dict]:
    try:
        exported: HFExport = export_hf_dataset(table, out)
        store = lineage.store()
        card = write_data_card(out, store, exported.rows, asset_key=asset_key, partition=partition,
                               pretty_name=config.pretty_name or f"gme_data {asset_key}"
                               + (f" ({partition})" if partition else ""),
                               lineage_path=_lineage_location(store), columns=exported.columns)
    except GmeDataError as exc:
        raise dg.Failure(f"{asset_key} export to {out}: {exc}") from exc
    target = HubTarget(repo_id=config.hub_repo_id, token_env=config.hub_token_env, private=config.hub_private,
                       endpoint=config.hub_endpoint or None)
    try:
        push = target.configured()
        hub = push_folder_to_hub(out, target) if push else {}
    except GmeDataError as exc:  # already redacted; the local export stays as written
        raise dg.Failure(f"{asset_key} export written to {out}, hub push refused: {exc}") from None
    if push:
        context.log.info(f"pushed {out} to the hub dataset {hub['repo_id']}")
    else:
        missing = "repo id" if not config.hub_repo_id.strip() else f"token (${config.hub_token_env})"
        hub = {"pushed": False, "reason": f"no hub {missing} configured"}
    value = {**exported.as_metadata(), "card": str(card), "hub": hub}
    metadata = {
        "export_dir": dg.MetadataValue.path(str(out)),
        "load_from_disk": dg.MetadataValue.md(f"```python\nimport datasets\n"
                                              f"ds = datasets.load_from_disk({str(exported.disk_path)!r})\n"
                                              f"ds = datasets.load_dataset('parquet', data_dir={str(out / 'data')!r})\n```"),
        "rows": as_json(exported.rows),
        "images": exported.images,
        "data_card": dg.MetadataValue.path(str(card)),
        "data_card_preview": dg.MetadataValue.md(card.read_text(encoding="utf-8").split("---", 2)[-1][:6000]),
        "hub": as_json(hub),
    }
    return value, metadata


def _readback_check(asset_key: str, value: dict) -> dg.AssetCheckResult:
    import datasets

    ds = datasets.load_from_disk(value["disk_path"])
    rows = {s: len(ds[s]) for s in ds}
    return dg.AssetCheckResult(check_name=READBACK, asset_key=asset_key, passed=rows == value["rows"],
                               metadata={"rows_read_back": as_json(rows), "rows_written": as_json(value["rows"])})


@dg.asset(
    group_name="exports",
    owners=OWNERS,
    tags={"stage": "export"},
    kinds={"python", "huggingface", "parquet"},
    check_specs=[dg.AssetCheckSpec(READBACK, asset="training_set_hf",
                                   description="datasets.load_from_disk reads back every split's rows")],
    description="training_set as a Hugging Face dataset: images as datasets.Image, one split per training "
                "split, save_to_disk + hub-layout Parquet, a data card built from lineage; pushed to the hub "
                "when a repo id and a token (from the environment) are configured.",
)
def training_set_hf(context: dg.AssetExecutionContext, config: HFExportConfig, training_set: pd.DataFrame,
                    workbench: WorkbenchResource, lineage: LineageResource):
    out = workbench.path("exports", "hf") / "training_set"
    value, metadata = _hf_export(context, config, training_set, out, lineage, "training_set", None)
    yield dg.Output(value, metadata=metadata)
    yield _readback_check("training_set_hf", value)


@dg.asset(
    partitions_def=domains,
    group_name="exports",
    owners=OWNERS,
    tags={"stage": "export"},
    kinds={"python", "huggingface", "parquet"},
    check_specs=[dg.AssetCheckSpec(READBACK, asset="domain_datasets_hf",
                                   description="datasets.load_from_disk reads back the slice's rows")],
    description="One domain_datasets slice as a Hugging Face dataset with its data card (optionally pushed).",
)
def domain_datasets_hf(context: dg.AssetExecutionContext, config: HFExportConfig, domain_datasets: pd.DataFrame,
                       workbench: WorkbenchResource, lineage: LineageResource):
    domain = context.partition_key
    out = workbench.path("exports", "hf", "domains") / domain
    value, metadata = _hf_export(context, config, domain_datasets, out, lineage, "domain_datasets", domain)
    yield dg.Output(value, metadata=metadata)
    yield _readback_check("domain_datasets_hf", value)


@dg.asset(
    group_name="exports",
    owners=OWNERS,
    tags={"stage": "export"},
    kinds={"python", "json"},
    check_specs=[dg.AssetCheckSpec(READBACK, asset="training_set_swift",
                                   description="every JSONL line parses and every image it names is there")],
    description="training_set in ms-swift's embedding format (swift sft --task_type embedding --loss_type "
                "infonce): query, positive and hard negatives as messages, images copied next to the JSONL.",
)
def training_set_swift(context: dg.AssetExecutionContext, config: SwiftExportConfig, training_set: pd.DataFrame,
                       workbench: WorkbenchResource):
    out = workbench.path("exports", "swift") / "training_set"
    try:
        exported = export_swift_embedding(training_set, out)
    except GmeDataError as exc:
        raise dg.Failure(f"training_set_swift export to {out}: {exc}") from exc
    command = swift_train_command(out, gpus=config.gpus)
    negs = pd.DataFrame({"negatives": list(exported.negatives_per_row), "rows": list(exported.negatives_per_row.values())})
    value = {**exported.as_metadata(), "train_command": command}
    yield dg.Output(value, metadata={
        "export_dir": dg.MetadataValue.path(str(out)),
        "rows": as_json(exported.rows),
        "images": exported.images,
        "negatives_per_row": dg.MetadataValue.md(md_table(negs)),
        "train_command": dg.MetadataValue.md(f"```bash\n{command}\n```"),
    })
    yield dg.AssetCheckResult(check_name=READBACK, asset_key="training_set_swift", **_swift_readback(out, exported.rows))


def _swift_readback(out: Path, rows: dict[str, int]) -> dict[str, Any]:
    import json

    counts, missing = {}, []
    for split in rows:
        lines = (out / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
        counts[split] = len(lines)
        for line in lines:
            r = json.loads(line)
            paths = list(r.get("images", [])) + [p for group in ("positive_images", "negative_images")
                                                 for inner in r.get(group, []) for p in inner]
            missing += [p for p in paths if not (out / p).is_file()]
    return {"passed": counts == rows and not missing,
            "metadata": {"rows_read_back": as_json(counts), "missing_images": len(missing)}}
