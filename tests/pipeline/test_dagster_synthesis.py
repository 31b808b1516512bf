"""Real Dagster materializations of the per-shard synthesis chain on the bundled sample."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg
import pandas as pd

from gme_data.lineage import LineageStore


def _checks(result: dg.ExecutionResult) -> dict[str, bool]:
    return {e.event_specific_data.asset_key.to_user_string(): e.event_specific_data.passed
            for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}


def _steps(result: dg.ExecutionResult, kind: str) -> set[str]:
    return {e.step_key for e in result.all_events if e.event_type_value == kind}


def test_dirty_shard_materializes_with_bad_rows_in_lineage(workbench: Path) -> None:
    from dagster_project.definitions import defs, register_shards

    instance = dg.DagsterInstance.ephemeral()
    register_shards(instance)
    job = defs.resolve_job_def("synthesis_job")
    res = job.execute_in_process(instance=instance, partition_key="sample-dirty",
                                 tags={}, raise_on_error=False,
                                 run_config={"ops": {}},
                                 asset_selection=[dg.AssetKey("raw_corpus"), dg.AssetKey("candidates"),
                                                  dg.AssetKey("generated_queries")])
    assert res.success
    assert _checks(res) == {"raw_corpus": True, "candidates": True, "generated_queries": True}
    store = LineageStore(workbench / "lineage.duckdb")
    reasons = set(store.drops("raw_corpus")["reason"])
    assert {"unreadable_image", "decompression_bomb", "wrong_type"} <= reasons
    raw = pd.read_parquet(workbench / "storage" / "raw_corpus" / "sample-dirty.parquet")
    assert len(raw) >= 1 and raw["text"].notna().all()
    # the trace of a generated query walks back to its raw row
    q = pd.read_parquet(workbench / "storage" / "generated_queries" / "sample-dirty.parquet")
    trace = store.trace(q["id"].iloc[0])
    assert set(trace["stage"]) >= {"generated_queries", "candidates"}
    assert any(p.startswith("raw-") for p in trace["parent_id"])
    reports = list((workbench / "reports").glob("*/candidates__sample-dirty.html"))
    assert reports and "PASSED" in reports[0].read_text()


def test_failing_gate_blocks_downstream_and_says_why(workbench: Path) -> None:
    from dagster_project.definitions import defs, register_shards

    instance = dg.DagsterInstance.ephemeral()
    register_shards(instance)
    job = defs.resolve_job_def("synthesis_job")
    res = job.execute_in_process(
        instance=instance, partition_key="sample-dirty", raise_on_error=False,
        asset_selection=[dg.AssetKey("raw_corpus"), dg.AssetKey("candidates")],
        run_config={"ops": {"raw_corpus": {"config": {"min_rows": 1000}}}},
    )
    assert not res.success
    assert _checks(res) == {"raw_corpus": False}
    assert "candidates" not in _steps(res, "STEP_SUCCESS")
    evaluation = next(e.event_specific_data for e in res.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION")
    assert "expect_table_row_count_to_be_between" in evaluation.description
    md = evaluation.metadata["expectations"].value
    assert "❌" in md and "min_value" not in md.split("❌")[0]
    # not a materialization: the step fails and says which expectation failed, without opening logs
    assert "ASSET_MATERIALIZATION" not in {e.event_type_value for e in res.all_events}
    step_failure = next(e.event_specific_data for e in res.all_events if e.event_type_value == "STEP_FAILURE")
    assert "quality gate failed for raw_corpus[sample-dirty]" in step_failure.error.message
    assert "expect_table_row_count_to_be_between" in step_failure.error.message
    # lineage keeps the verdict beside the records the stage wrote
    verdict = LineageStore(workbench / "lineage.duckdb").query(
        "SELECT metadata ->> 'gate_passed' AS passed, metadata ->> 'quality_gate' AS gate FROM assets "
        "WHERE asset_key = 'raw_corpus' AND partition = 'sample-dirty'")
    assert verdict["passed"].tolist() == ["false"] and "row_count" in verdict["gate"].iloc[0]
    # the rejected table is quarantined, not left where a later run would read it
    storage = workbench / "storage" / "raw_corpus"
    assert not (storage / "sample-dirty.parquet").exists()
    assert len(pd.read_parquet(storage / "_quarantine" / "sample-dirty.parquet")) >= 1
    later = job.execute_in_process(instance=instance, partition_key="sample-dirty", raise_on_error=False,
                                   asset_selection=[dg.AssetKey("candidates")])
    failure = next(e.event_specific_data.error for e in later.all_events if e.event_type_value == "STEP_FAILURE")
    assert "quarantined by a failed quality gate" in str(failure.cause or failure.message)
    # fixing the config and re-running puts the shard back and empties the quarantine
    assert job.execute_in_process(instance=instance, partition_key="sample-dirty",
                                  asset_selection=[dg.AssetKey("raw_corpus")]).success
    assert (storage / "sample-dirty.parquet").is_file()
    assert not (storage / "_quarantine" / "sample-dirty.parquet").exists()
    # rejecting a partition that had good data sets that data aside too, it is not deleted
    good = pd.read_parquet(storage / "sample-dirty.parquet")
    assert not job.execute_in_process(instance=instance, partition_key="sample-dirty", raise_on_error=False,
                                      asset_selection=[dg.AssetKey("raw_corpus")],
                                      run_config={"ops": {"raw_corpus": {"config": {"min_rows": 1000}}}}).success
    assert not (storage / "sample-dirty.parquet").exists()
    pd.testing.assert_frame_equal(pd.read_parquet(storage / "_quarantine" / "sample-dirty.superseded.parquet"), good)
    assert job.execute_in_process(instance=instance, partition_key="sample-dirty",
                                  asset_selection=[dg.AssetKey("raw_corpus")]).success
    assert sorted(p.name for p in (storage / "_quarantine").iterdir()) == []


def test_rematerializing_a_partition_replaces_lineage(workbench: Path) -> None:
    from dagster_project.definitions import defs, register_shards

    instance = dg.DagsterInstance.ephemeral()
    register_shards(instance)
    job = defs.resolve_job_def("synthesis_job")
    sel = [dg.AssetKey("raw_corpus"), dg.AssetKey("candidates")]
    for _ in range(2):
        assert job.execute_in_process(instance=instance, partition_key="sample-dirty", asset_selection=sel).success
    store = LineageStore(workbench / "lineage.duckdb")
    dup = store.query("SELECT record_id, count(*) AS n FROM records GROUP BY 1 HAVING count(*) > 1")
    assert dup.empty
    assert store.query("SELECT count(DISTINCT run_id) AS n FROM records")["n"].iloc[0] == 1


RUN_SHARD = textwrap.dedent("""
    import sys
    import dagster as dg
    from dagster_project.definitions import synthesis_job_def
    shard = sys.argv[1]
    with dg.DagsterInstance.get() as instance:
        with dg.execute_job(dg.reconstructable(synthesis_job_def), instance=instance,
                            tags={"dagster/partition": shard},
                            asset_selection=[dg.AssetKey("raw_corpus")]) as res:
            sys.exit(0 if res.success else 1)
""")


def test_multiprocess_executor_parallel_runs_share_the_lineage_file(workbench: Path, tmp_path: Path) -> None:
    """Two runs at once, each step in its own process (multiprocess executor), one lineage file."""
    from dagster_project.definitions import register_shards

    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    with dg.DagsterInstance.from_config(str(home)) as instance:
        register_shards(instance)
    shards = ("sample-dirty", "sample-wiki_03")
    procs = [subprocess.Popen([sys.executable, "-c", RUN_SHARD, s], env=env, cwd=Path(__file__).parents[2])
             for s in shards]
    codes = [p.wait(timeout=600) for p in procs]
    assert codes == [0, 0]
    store = LineageStore(workbench / "lineage.duckdb")
    parts = store.query("SELECT asset_key, partition, count(*) AS n FROM records GROUP BY 1, 2 ORDER BY 1, 2")
    assert set(zip(parts.asset_key, parts.partition, strict=True)) == {("raw_corpus", "sample-dirty"),
                                                                       ("raw_corpus", "sample-wiki_03")}
    assert parts["n"].min() >= 9
    runs = store.query("SELECT count(DISTINCT run_id) AS n FROM records")["n"].iloc[0]
    assert runs == 2
