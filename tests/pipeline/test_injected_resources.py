"""Stages use the resources injected into them: a configured IO manager base is where shards and
quarantined tables go, not the process default (the regression of finish_stage's own IO manager)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd

from dagster_project.catalog import SourceCatalogResource
from dagster_project.definitions import build_resources, defs
from dagster_project.io_manager import ParquetIOManager
from dagster_project.partitions import source_shards
from gme_data.storage_names import path_segment

ROWS = ['{"title": "Oak", "text": "The oak is a tree of the genus Quercus."}',
        '{"title": "Fern", "text": "Ferns reproduce by spores and have no seeds."}']


def _raw_corpus(workbench: Path, configured: Path, min_rows: int) -> tuple[dg.ExecuteInProcessResult, str]:
    inbox = workbench / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    (inbox / "plants.jsonl").write_text("\n".join(ROWS) + "\n")
    catalog = SourceCatalogResource(include_sample=False)
    shard = next(iter(catalog.inbox_specs()))
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(source_shards.name, [shard])
    resources = {**build_resources(), "catalog": catalog, "io_manager": ParquetIOManager(base_url=str(configured))}
    res = dg.materialize([defs.get_assets_def("raw_corpus")], partition_key=shard, instance=instance,
                         resources=resources, raise_on_error=False,
                         run_config={"ops": {"raw_corpus": {"config": {"min_rows": min_rows}}}})
    return res, shard


def test_rejected_table_is_quarantined_under_the_configured_base(workbench: Path, tmp_path: Path) -> None:
    configured = tmp_path / "configured_storage"
    res, shard = _raw_corpus(workbench, configured, min_rows=1000)  # the gate's row-count bound fails
    assert not res.success
    quarantined = configured / "raw_corpus" / "_quarantine" / f"{path_segment(shard)}.parquet"
    assert quarantined.is_file()
    assert list(pd.read_parquet(quarantined)["title"]) == ["Oak", "Fern"]
    default = workbench / "storage"  # GME_DATA_STORAGE_URL: what a ParquetIOManager() of its own would use
    assert not (default / "raw_corpus").exists()


def test_passing_table_is_staged_and_stored_under_the_configured_base(workbench: Path, tmp_path: Path) -> None:
    configured = tmp_path / "configured_storage"
    res, shard = _raw_corpus(workbench, configured, min_rows=1)
    assert res.success
    shard_file = configured / "raw_corpus" / f"{path_segment(shard)}.parquet"
    assert len(pd.read_parquet(shard_file)) == 2
    assert not list(configured.rglob("*.tmp"))
    assert not (workbench / "storage" / "raw_corpus").exists()
