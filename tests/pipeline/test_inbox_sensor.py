"""The inbox sensor: a manifest dropped into the watched folder becomes a partition and a run request."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import dagster as dg
import pytest

from dagster_project.catalog import SourceCatalogResource, spec_for_path
from dagster_project.jobs import inbox_sensor
from dagster_project.partitions import source_shards
from gme_data.errors import InvalidInputError


def _drop(inbox: Path, name: str, rows: list[dict]) -> Path:
    path = inbox / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    old = time.time() - 60
    os.utime(path, (old, old))
    return path


def test_new_inbox_file_adds_a_partition_and_requests_a_run(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    _drop(inbox, "New Batch 01.jsonl", [{"title": "Oak", "text": "The oak is a tree in the genus Quercus."}])
    catalog = SourceCatalogResource(inbox_dir=str(inbox), include_sample=False)
    instance = dg.DagsterInstance.ephemeral()
    ctx = dg.build_sensor_context(instance=instance, resources={"catalog": catalog})
    result = inbox_sensor(ctx)
    assert [r.partition_key for r in result.run_requests] == ["new-batch-01"]
    assert result.dynamic_partitions_requests[0].partition_keys == ["new-batch-01"]
    instance.add_dynamic_partitions(source_shards.name, ["new-batch-01"])
    again = inbox_sensor(dg.build_sensor_context(instance=instance, resources={"catalog": catalog}))
    assert isinstance(again, dg.SkipReason)


def test_file_still_being_written_is_not_picked_up(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "fresh.jsonl").write_text('{"text": "still writing"}\n')
    catalog = SourceCatalogResource(inbox_dir=str(inbox), include_sample=False)
    ctx = dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral(), resources={"catalog": catalog})
    assert isinstance(inbox_sensor(ctx), dg.SkipReason)


def test_inbox_entry_kinds(tmp_path: Path) -> None:
    wiki = _drop(tmp_path, "w.jsonl", [{"title": "T", "paragraphs": [{"text": "x"}]}])
    assert spec_for_path(wiki).kind == "wikipedia"
    flat = _drop(tmp_path, "f.jsonl", [{"text": "x"}])
    assert spec_for_path(flat).kind == "jsonl"
    (tmp_path / "imgs").mkdir()
    assert spec_for_path(tmp_path / "imgs").kind == "image_folder"
    spec_file = tmp_path / "hub.source.json"
    spec_file.write_text(json.dumps({"kind": "hf", "path": "user/dataset", "split": "train"}))
    spec = spec_for_path(spec_file)
    assert (spec.kind, spec.shard_name, str(spec.path)) == ("hf", "hub", "user/dataset")
    assert spec_for_path(tmp_path / "notes.txt") is None


def test_unknown_shard_and_bad_inbox_file_are_named_errors(tmp_path: Path) -> None:
    catalog = SourceCatalogResource(inbox_dir=str(tmp_path), include_sample=False)
    with pytest.raises(InvalidInputError, match="'nope'"):
        catalog.spec("nope")
    bad = tmp_path / "broken.jsonl"
    bad.write_text("{not json\n")
    with pytest.raises(InvalidInputError, match="broken.jsonl"):
        spec_for_path(bad)
