"""Finding 14.5: one bad inbox file or line is a recorded error or drop, never a block for the rest.

Broken entries (invalid ``.source.json``, an unknown spec key, a JSONL whose only line is 100,000
nested ``[``) sit beside good ones in a real inbox folder; the catalog, the sensor and a real
``raw_corpus`` materialization must serve the good shards and name the bad entries.
"""

import json
import os
import time
from pathlib import Path

import dagster as dg
import pytest

from dagster_project.catalog import SourceCatalogResource
from dagster_project.jobs import inbox_sensor
from gme_data.errors import InvalidInputError
from gme_data.images import ImageStore
from gme_data.sources import SourceSpec, read_source

DEEP = "[" * 100_000


def _write(inbox: Path, name: str, text: str) -> Path:
    path = inbox / name
    path.write_text(text)
    old = time.time() - 60
    os.utime(path, (old, old))
    return path


def _inbox_with_broken_entries(inbox: Path) -> None:
    inbox.mkdir(parents=True, exist_ok=True)
    _write(inbox, "good.jsonl", json.dumps({"title": "Oak", "text": "The oak is a tree."}) + "\n")
    _write(inbox, "broken.source.json", '{"kind": "jsonl", "path": ')
    _write(inbox, "colour.source.json", json.dumps({"kind": "jsonl", "path": "good.jsonl", "colour": "red"}))
    _write(inbox, "deep.jsonl", DEEP + "\n")
    _write(inbox, "deep-first.jsonl", DEEP + "\n" + json.dumps({"text": "A later line is fine."}) + "\n")


def test_broken_inbox_entries_are_named_and_the_good_shard_still_loads(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    _inbox_with_broken_entries(inbox)
    catalog = SourceCatalogResource(inbox_dir=str(inbox), include_sample=False)
    assert sorted(catalog.shards()) == ["deep-first", "good"]  # its deep first line becomes a drop
    assert catalog.spec("good").kind == "jsonl" and catalog.spec("deep-first").kind == "jsonl"
    errors = catalog.inbox_errors()
    assert sorted(errors) == ["broken.source.json", "colour.source.json", "deep.jsonl"]
    assert "not valid JSON" in errors["broken.source.json"]
    assert "unknown key(s) ['colour']" in errors["colour.source.json"]
    assert "nested too deeply" in errors["deep.jsonl"]
    with pytest.raises(InvalidInputError, match="colour.source.json"):
        catalog.spec("colour")  # the broken entry's own shard gets its reason


def test_sensor_requests_the_good_shard_and_reports_the_broken_ones(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    _inbox_with_broken_entries(inbox)
    catalog = SourceCatalogResource(inbox_dir=str(inbox), include_sample=False)
    instance = dg.DagsterInstance.ephemeral()
    result = inbox_sensor(dg.build_sensor_context(instance=instance, resources={"catalog": catalog}))
    assert [r.partition_key for r in result.run_requests] == ["deep-first", "good"]
    instance.add_dynamic_partitions("source_shard", ["deep-first", "good"])
    again = inbox_sensor(dg.build_sensor_context(instance=instance, resources={"catalog": catalog}))
    assert isinstance(again, dg.SkipReason)
    for name in ("broken.source.json", "colour.source.json", "deep.jsonl"):
        assert name in again.skip_message
    assert "3 inbox entries skipped" in again.skip_message


@pytest.mark.parametrize("kind", ["jsonl", "wikipedia"])
def test_deeply_nested_line_is_a_recorded_drop_and_the_shard_goes_on(tmp_path: Path, kind: str) -> None:
    row = {"title": "Oak", "text": "The oak is a tree."}
    if kind == "wikipedia":
        row = {"title": "Oak", "paragraphs": [{"text": "The oak is a tree."}]}
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps(row) + "\n" + DEEP + "\n" + json.dumps(row).replace("Oak", "Elm") + "\n")
    df, out = read_source(SourceSpec(kind=kind, path=manifest, shard="m"), ImageStore(tmp_path / "img"),
                          show_progress=False)
    assert len(df) == 2
    drops = [r for r in out.records if r.status == "dropped"]
    assert [(d.reason, d.payload["where"]) for d in drops] == [("malformed_row", "m.jsonl line 2")]
    assert "nested too deeply" in drops[0].payload["message"]


def test_raw_corpus_run_of_a_shard_with_a_deep_line_succeeds_with_the_drop_in_lineage(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "var"
    inbox = home / "inbox"
    inbox.mkdir(parents=True)
    rows = [json.dumps({"title": f"T{i}", "text": f"paragraph {i}"}) for i in range(3)]
    _write(inbox, "mixed.jsonl", "\n".join([rows[0], DEEP, rows[1], rows[2]]) + "\n")
    _write(inbox, "broken.source.json", "{")  # a broken neighbour must not matter either
    monkeypatch.setenv("GME_DATA_HOME", str(home))
    monkeypatch.setenv("GME_DATA_STORAGE_URL", str(home / "storage"))
    monkeypatch.delenv("GME_DATA_REPORTS_URL", raising=False)
    from dagster_project.definitions import defs
    from gme_data.lineage import LineageStore

    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("source_shard", ["mixed"])
    res = defs.resolve_job_def("synthesis_job").execute_in_process(
        instance=instance, partition_key="mixed", asset_selection=[dg.AssetKey("raw_corpus")])
    assert res.success
    counts = LineageStore(home / "lineage.duckdb").query(
        "SELECT status, coalesce(reason, '-'), count(*) AS n FROM records WHERE asset_key = 'raw_corpus' GROUP BY 1, 2 ORDER BY 1")
    assert counts.values.tolist() == [["dropped", "malformed_row", 1], ["kept", "-", 3]]
