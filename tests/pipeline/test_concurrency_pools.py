"""Concurrency pools: the stages carry them, the instance config limits them, runs take turns."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from dagster_project import pools

REPO = Path(__file__).resolve().parents[2]


def test_stages_declare_their_pools(monkeypatch) -> None:
    from dagster_project.definitions import defs

    by_asset = pools.pools_of(defs)
    assert by_asset["fused_queries"] == pools.IMAGE_POOL_INDEX
    for gpu_step in ("hard_negatives", "hard_negatives_stage2", "gme_model_stage1", "gme_model", "umrb_eval",
                     "umrb_dataset_eval"):
        assert by_asset[gpu_step] == pools.GPU, gpu_step
    for writer in ("raw_corpus", "candidates", "filtered_samples", "training_set", "domain_datasets"):
        assert by_asset[writer] == pools.DUCKDB_LINEAGE, writer  # the DuckDB lineage backend is the default
    # the tests generate with the rules: no local server, so no machine-wide LLM pool
    assert by_asset["generated_queries"] == pools.DUCKDB_LINEAGE
    monkeypatch.setenv("GME_DATA_LLM_BACKEND", "local")
    assert pools.llm_pool() == pools.LLM_SERVER
    monkeypatch.setenv("GME_DATA_LINEAGE_BACKEND", "parquet")
    assert pools.lineage_pool() is None


def test_two_runs_on_one_pool_run_one_after_the_other(tmp_path: Path) -> None:
    """Two runs launched at once (two processes), each a step in the GPU pool, on an instance with the
    project's dagster.yaml: the second step starts only after the first ended."""
    home = tmp_path / "dagster_home"
    pools.write_instance_config(home)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.event_log_storage.get_concurrency_info(pools.GPU).limit == 1
        pools.apply_pool_limits(instance)
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    outs = [tmp_path / f"run{i}.json" for i in range(2)]
    procs = [subprocess.Popen([sys.executable, "-m", "tests.pipeline.pool_probe", str(o)], env=env, cwd=REPO)
             for o in outs]
    assert [p.wait(timeout=180) for p in procs] == [0, 0]
    (_, first_end), (second_start, _) = sorted((json.loads(o.read_text())["start"], json.loads(o.read_text())["end"])
                                               for o in outs)
    assert second_start >= first_end, "the pool let two steps overlap"
