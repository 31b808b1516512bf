"""Findings 14.3 and 14.4: a failed write never deletes the last good copy; names cannot escape storage.

Real Dagster materializations through the Parquet IO manager, real failures (a table pyarrow cannot
serialise, a file-size limit that makes the write itself fail with EFBIG), real files on disk.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest

from dagster_project.io_manager import ParquetIOManager
from gme_data.storage_names import path_segment

ROOT = Path(__file__).parents[2]
ESCAPE = "../../../../ESCAPED"


def _asset(partitions: dg.PartitionsDefinition):
    @dg.asset(partitions_def=partitions, config_schema={"rows": dg.Field(int, default_value=3),
                                                        "unserialisable": dg.Field(bool, default_value=False)})
    def table(context: dg.AssetExecutionContext) -> pd.DataFrame:
        if context.op_config["unserialisable"]:
            return pd.DataFrame({"x": [1, "one"]})  # mixed object column: pyarrow refuses it
        return pd.DataFrame({"x": range(context.op_config["rows"]), "key": context.partition_key})

    return table


def _materialize(asset, io: ParquetIOManager, key: str, **config) -> dg.ExecuteInProcessResult:
    return dg.materialize([asset], partition_key=key, resources={"io_manager": io}, raise_on_error=False,
                          run_config={"ops": {"table": {"config": config}}} if config else None)


def _good_then_rejected(storage: Path, key: str = "p") -> tuple[ParquetIOManager, object, pd.DataFrame, Path, Path]:
    """Partition ``key`` materialized, then rejected by a gate: its good table is the superseded copy."""
    io = ParquetIOManager(base_url=str(storage))
    asset = _asset(dg.StaticPartitionsDefinition([key]))
    assert _materialize(asset, io, key, rows=5).success
    good = pd.read_parquet(storage / "table" / f"{key}.parquet")
    io.quarantine("table", key, pd.DataFrame({"x": [-1]}))  # what finish_stage does on a failed gate
    superseded = storage / "table" / "_quarantine" / f"{key}.superseded.parquet"
    rejected = storage / "table" / "_quarantine" / f"{key}.parquet"
    assert superseded.is_file() and rejected.is_file() and not (storage / "table" / f"{key}.parquet").exists()
    return io, asset, good, superseded, rejected


def test_table_that_fails_to_serialise_keeps_the_superseded_copy(tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    io, asset, good, superseded, rejected = _good_then_rejected(storage)
    res = _materialize(asset, io, "p", unserialisable=True)
    assert not res.success
    pd.testing.assert_frame_equal(pd.read_parquet(superseded), good)  # the only good copy survives
    assert rejected.is_file()
    assert not list(storage.rglob("*.tmp"))
    assert _materialize(asset, io, "p", rows=7).success  # a good write still replaces and clears them
    assert len(pd.read_parquet(storage / "table" / "p.parquet")) == 7
    assert not superseded.exists() and not rejected.exists()


WRITE_UNDER_FILE_SIZE_LIMIT = textwrap.dedent("""
    import resource, signal, sys
    import dagster as dg
    import numpy as np
    import pandas as pd
    from dagster_project.io_manager import ParquetIOManager

    @dg.asset(partitions_def=dg.StaticPartitionsDefinition(["p"]))
    def table() -> pd.DataFrame:
        return pd.DataFrame({"x": np.random.default_rng(0).random(500_000)})  # ~4 MB of Parquet

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # over the limit, write() fails with EFBIG instead
    limit = 256 * 1024
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    res = dg.materialize([table], partition_key="p", raise_on_error=False,
                         resources={"io_manager": ParquetIOManager(base_url=sys.argv[1])})
    errors = [e.event_specific_data.error for e in res.all_events if e.event_type_value == "STEP_FAILURE"]
    print("RESULT", res.success, [str(e.cause.message if e.cause else e.message)[:200] for e in errors])
""")


def test_write_failing_with_file_too_large_keeps_the_superseded_copy(tmp_path: Path) -> None:
    """A real failed write (the process's file-size limit, as on a full disk) after a gate rejection."""
    storage = tmp_path / "storage"
    _, _, good, superseded, rejected = _good_then_rejected(storage)
    out = subprocess.run([sys.executable, "-c", WRITE_UNDER_FILE_SIZE_LIMIT, str(storage)], cwd=ROOT,
                         env={**os.environ, "GME_DATA_HOME": str(tmp_path / "var")},
                         capture_output=True, text=True, timeout=180)
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT")), out.stderr[-3000:])
    assert line.startswith("RESULT False") and "File too large" in line, line
    pd.testing.assert_frame_equal(pd.read_parquet(superseded), good)
    assert rejected.is_file()
    assert not (storage / "table" / "p.parquet").exists()
    assert not list(storage.rglob("*.tmp"))  # the partial temporary file is removed


def _files_outside(tmp_path: Path, inside: Path) -> list[str]:
    return sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*ESCAPED*")
                  if inside not in p.parents)


def test_dotdot_partition_key_from_the_api_stays_inside_storage(tmp_path: Path) -> None:
    """Dagster accepts the key; the IO manager's shard, quarantine and lock must stay under storage."""
    storage = tmp_path / "a" / "b" / "c" / "storage"
    io = ParquetIOManager(base_url=str(storage))
    shards = dg.DynamicPartitionsDefinition(name="shards")
    asset = _asset(shards)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("shards", [ESCAPE])
    res = dg.materialize([asset], partition_key=ESCAPE, instance=instance, resources={"io_manager": io})
    assert res.success
    io.quarantine("table", ESCAPE, pd.DataFrame({"x": [0]}))
    assert _files_outside(tmp_path, storage) == []
    seg = path_segment(ESCAPE)
    assert "/" not in seg and (storage / "table" / "_quarantine" / f"{seg}.superseded.parquet").is_file()
    assert pd.read_parquet(storage / "table" / "_quarantine" / f"{seg}.parquet")["x"].tolist() == [0]


def test_partition_named_like_a_superseded_copy_does_not_collide(tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    io = ParquetIOManager(base_url=str(storage))
    asset = _asset(dg.StaticPartitionsDefinition(["x", "x.superseded"]))
    assert _materialize(asset, io, "x", rows=4).success
    good_x = pd.read_parquet(storage / "table" / "x.parquet")
    io.quarantine("table", "x", pd.DataFrame({"x": [-1]}))  # x's good table set aside as superseded
    io.quarantine("table", "x.superseded", pd.DataFrame({"x": [-2]}))
    assert _materialize(asset, io, "x.superseded", rows=2).success  # passes: clears *its own* quarantine
    superseded_x = next(p for p in (storage / "table" / "_quarantine").iterdir()
                        if p.name == "x.superseded.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(superseded_x), good_x)
    assert len(pd.read_parquet(storage / "table" / f"{path_segment('x.superseded')}.parquet")) == 2


def _drop(inbox: Path, name: str, text: str) -> Path:
    path = inbox / name
    path.write_text(text)
    return path


def test_source_json_shard_field_is_slugged_and_the_run_stays_inside_storage(tmp_path: Path, monkeypatch) -> None:
    home = tmp_path / "a" / "b" / "c" / "var"
    inbox = home / "inbox"
    inbox.mkdir(parents=True)
    rows = [{"title": "Oak", "text": "The oak is a tree."}, {"title": "Elm", "text": "The elm is a tree too."}]
    _drop(inbox, "rows.txt", "".join(json.dumps(r) + "\n" for r in rows))  # not a shard by itself
    _drop(inbox, "evil.source.json", json.dumps({"kind": "jsonl", "path": "rows.txt", "shard": ESCAPE}))
    monkeypatch.setenv("GME_DATA_HOME", str(home))
    monkeypatch.setenv("GME_DATA_STORAGE_URL", str(home / "storage"))
    monkeypatch.delenv("GME_DATA_REPORTS_URL", raising=False)
    from dagster_project.catalog import SourceCatalogResource
    from dagster_project.definitions import defs, register_shards

    assert list(SourceCatalogResource(include_sample=False).inbox_specs()) == ["escaped"]
    instance = dg.DagsterInstance.ephemeral()
    register_shards(instance, only=["escaped"])
    assert ESCAPE not in instance.get_dynamic_partitions("source_shard")
    res = defs.resolve_job_def("synthesis_job").execute_in_process(
        instance=instance, partition_key="escaped", asset_selection=[dg.AssetKey("raw_corpus")])
    assert res.success
    assert len(pd.read_parquet(home / "storage" / "raw_corpus" / "escaped.parquet")) == 2
    assert _files_outside(tmp_path, home) == []


def test_lineage_drops_query_quotes_the_partition(tmp_path: Path, monkeypatch) -> None:
    """A real stage (finish_stage) on a partition key holding quotes and backticks: the query shown in
    the UI runs as written against the lineage store and counts that partition's drops."""
    home = tmp_path / "var"
    monkeypatch.setenv("GME_DATA_HOME", str(home))
    monkeypatch.setenv("GME_DATA_STORAGE_URL", str(home / "storage"))
    monkeypatch.delenv("GME_DATA_REPORTS_URL", raising=False)
    from assets.common import finish_stage
    from dagster_project.resources import LineageResource, WorkbenchResource
    from gme_data.sources import SourceSpec, read_source

    manifest = tmp_path / "rows.jsonl"
    manifest.write_text('{"title": "Oak", "text": "The oak is a tree."}\n{broken\n[1, 2]\n')
    key = "o'brien ```"
    shards = dg.DynamicPartitionsDefinition(name="quoted")

    @dg.asset(name="raw_corpus", partitions_def=shards, check_specs=[dg.AssetCheckSpec("quality_gate",
                                                                                         asset="raw_corpus")])
    def raw_like(context: dg.AssetExecutionContext, lineage: LineageResource, workbench: WorkbenchResource,
                 io_manager: dg.ResourceParam[ParquetIOManager]):
        spec = SourceSpec(kind="jsonl", path=manifest, shard=context.partition_key)
        df, output = read_source(spec, workbench.image_store(), show_progress=False)
        yield from finish_stage(context, df, output, io_manager=io_manager, lineage=lineage, workbench=workbench,
                                gate_params={"min_rows": 1, "max_rows": 100})

    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("quoted", [key])
    res = dg.materialize([raw_like], partition_key=key, instance=instance,
                         resources={"io_manager": ParquetIOManager(), "lineage": LineageResource(),
                                    "workbench": WorkbenchResource()})
    assert res.success
    md = res.asset_materializations_for_node("raw_corpus")[0].metadata["lineage_drops_query"].value
    fence = md.split("\n", 1)[0].rstrip("sql")
    assert md.endswith("\n" + fence) and fence.count("`") > 3  # no backtick run closes the block early
    sql = md[len(fence) + len("sql\n"): -len(fence) - 1]
    with duckdb.connect(str(home / "lineage.duckdb"), read_only=True) as con:
        drops = dict(con.execute(sql).fetchall())
    assert drops == {"malformed_row": 1, "wrong_type": 1}
    assert (home / "storage" / "raw_corpus" / f"{path_segment(key)}.parquet").is_file()


@pytest.mark.parametrize("name", [".", "..", "a/b", "a\\b", "x.superseded", "%2E", ESCAPE])
def test_path_segment_is_one_component_and_one_to_one(name: str) -> None:
    seg = path_segment(name)
    assert "/" not in seg and "\\" not in seg and seg not in (".", "..") and not seg.endswith(".superseded")
    others = {path_segment(n) for n in (".", "..", "a/b", "a\\b", "x.superseded", "%2E", ESCAPE) if n != name}
    assert seg not in others


def test_object_storage_url_writes_through_fsspec_with_the_lock_under_home(tmp_path: Path, monkeypatch) -> None:
    """Good input on a non-local fsspec URL (memory://, as s3:// would be): shards are written and read
    back as before; the partition lock, which cannot live in object storage, is a local file."""
    monkeypatch.setenv("GME_DATA_HOME", str(tmp_path / "var"))
    url = f"memory://io-test-{os.getpid()}-{tmp_path.name}"
    io = ParquetIOManager(base_url=url)
    asset = _asset(dg.StaticPartitionsDefinition(["p"]))
    assert _materialize(asset, io, "p", rows=4).success
    fs, root = io._fs()
    assert fs.ls(f"{root}/table", detail=False) == [f"{root}/table/p.parquet"]
    with fs.open(f"{root}/table/p.parquet", "rb") as f:
        assert pd.read_parquet(f)["x"].tolist() == [0, 1, 2, 3]
    assert [p.name for p in (tmp_path / "var" / "locks").rglob("*.lock")] == ["p.lock"]


RAW_CORPUS_UNDER_FILE_SIZE_LIMIT = textwrap.dedent("""
    import resource, signal, sys
    import dagster as dg
    from dagster_project.definitions import defs

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    limit = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("source_shard", ["big"])
    res = defs.resolve_job_def("synthesis_job").execute_in_process(
        instance=instance, partition_key="big", asset_selection=[dg.AssetKey("raw_corpus")], raise_on_error=False)
    errors = [e.event_specific_data.error for e in res.all_events if e.event_type_value == "STEP_FAILURE"]
    print("RESULT", res.success, [str(e.cause.message if e.cause else e.message)[:300] for e in errors])
""")


def test_raw_corpus_whose_shard_cannot_be_written_leaves_lineage_and_shard_of_the_last_good_run(
        tmp_path: Path, monkeypatch) -> None:
    """A real raw_corpus re-run fails writing its shard (file-size limit, as on a full disk): lineage must
    still describe the live shard (both from the earlier run), not the rows that were never stored."""
    import numpy as np

    home = tmp_path / "var"
    inbox = home / "inbox"
    inbox.mkdir(parents=True)
    rng = np.random.default_rng(0)

    def drop(n: int) -> None:  # long random paragraphs: a shard of several MB, little lineage per row
        letters = np.array(list("abcdefghijklmnopqrstuvwxyz "))
        rows = ["".join(rng.choice(letters, 3000)) for _ in range(n)]
        (inbox / "big.jsonl").write_text("".join(json.dumps({"title": f"T{i}", "text": t}) + "\n"
                                                 for i, t in enumerate(rows)))

    drop(3000)
    env = {"GME_DATA_HOME": str(home), "GME_DATA_STORAGE_URL": str(home / "storage")}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("GME_DATA_REPORTS_URL", raising=False)
    from dagster_project.definitions import defs
    from gme_data.lineage import LineageStore

    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("source_shard", ["big"])
    assert defs.resolve_job_def("synthesis_job").execute_in_process(
        instance=instance, partition_key="big", asset_selection=[dg.AssetKey("raw_corpus")]).success
    shard = home / "storage" / "raw_corpus" / "big.parquet"
    lineage_db = home / "lineage.duckdb"
    limit = lineage_db.stat().st_size + 4 * 2**20  # room for lineage, none for a shard of ~7 MB
    assert shard.stat().st_size > limit + 2**20
    before = pd.read_parquet(shard)
    drop(3100)  # new rows arrive; the re-run cannot store them
    env.pop("GME_DATA_REPORTS_URL", None)
    out = subprocess.run([sys.executable, "-c", RAW_CORPUS_UNDER_FILE_SIZE_LIMIT, str(limit)], cwd=ROOT,
                         env={**os.environ, **env}, capture_output=True, text=True, timeout=300)
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT")), out.stderr[-3000:])
    assert line.startswith("RESULT False") and "File too large" in line, line
    pd.testing.assert_frame_equal(pd.read_parquet(shard), before)
    kept = LineageStore(lineage_db).query(
        "SELECT record_id FROM records WHERE asset_key = 'raw_corpus' AND partition = 'big' AND status = 'kept'")
    assert sorted(kept["record_id"]) == sorted(before["id"]), f"lineage has {len(kept)} rows, shard {len(before)}"
    assert not list((home / "storage").rglob("*.tmp"))


def test_temporaries_of_a_dead_writer_are_removed_by_the_next_write(tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    io = ParquetIOManager(base_url=str(storage))
    asset = _asset(dg.StaticPartitionsDefinition(["p", "q"]))
    (storage / "table" / "_quarantine").mkdir(parents=True)
    stale = [storage / "table" / "p.parquet.4242-0123456789ab.tmp",
             storage / "table" / "_quarantine" / "p.parquet.4242-ba9876543210.tmp"]
    other = storage / "table" / "q.parquet.4242-0123456789ab.tmp"  # another partition's: not this writer's business
    for f in (*stale, other):
        f.write_bytes(b"half a shard")
    assert _materialize(asset, io, "p").success
    io.quarantine("table", "p", pd.DataFrame({"x": [1]}))
    assert [f.exists() for f in stale] == [False, False] and other.exists()
