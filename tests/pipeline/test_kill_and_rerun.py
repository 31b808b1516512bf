"""A materialization killed with SIGKILL mid-run, then re-run: exact counts, no duplicate lineage."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import pandas as pd

from gme_data.lineage import LineageStore

SHARD = "sample-wiki_03"
SCRIPT = textwrap.dedent(f"""
    import dagster as dg
    from dagster_project.definitions import defs, register_shards
    instance = dg.DagsterInstance.ephemeral()
    register_shards(instance)
    sel = [dg.AssetKey(k) for k in ("raw_corpus", "candidates", "generated_queries")]
    defs.resolve_job_def("synthesis_job").execute_in_process(
        instance=instance, partition_key={SHARD!r}, asset_selection=sel)
""")


def test_sigkill_mid_materialization_then_rerun(tmp_path: Path, monkeypatch) -> None:
    home = tmp_path / "var"
    env = {**os.environ, "GME_DATA_HOME": str(home), "GME_DATA_STORAGE_URL": str(home / "storage")}
    env.pop("GME_DATA_REPORTS_URL", None)
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT], env=env, cwd=Path(__file__).parents[2],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    raw_shard = home / "storage" / "raw_corpus" / f"{SHARD}.parquet"
    deadline = time.time() + 300
    while not raw_shard.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # mid-run: raw_corpus is done, candidates is in progress
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not (home / "storage" / "generated_queries" / f"{SHARD}.parquet").exists()
    assert not list((home / "storage").rglob("*.tmp"))

    monkeypatch.setenv("GME_DATA_HOME", str(home))
    monkeypatch.setenv("GME_DATA_STORAGE_URL", str(home / "storage"))
    monkeypatch.delenv("GME_DATA_REPORTS_URL", raising=False)
    from dagster_project.definitions import defs, register_shards

    instance = dg.DagsterInstance.ephemeral()
    register_shards(instance)
    sel = [dg.AssetKey(k) for k in ("raw_corpus", "candidates", "generated_queries")]
    res = defs.resolve_job_def("synthesis_job").execute_in_process(
        instance=instance, partition_key=SHARD, asset_selection=sel)
    assert res.success

    store = LineageStore(home / "lineage.duckdb")
    dups = store.query("SELECT asset_key, record_id, count(*) AS n FROM records GROUP BY 1, 2 HAVING n > 1")
    assert dups.empty
    edge_dups = store.query("SELECT child_id, parent_id, asset_key, count(*) AS n FROM edges GROUP BY 1, 2, 3 "
                            "HAVING n > 1")
    assert edge_dups.empty
    for asset in ("raw_corpus", "candidates", "generated_queries"):
        table = pd.read_parquet(home / "storage" / asset / f"{SHARD}.parquet")
        counts = store.query("SELECT status, count(*) AS n, count(DISTINCT run_id) AS runs FROM records "
                             "WHERE asset_key = ? GROUP BY 1", [asset]).set_index("status")
        assert int(counts.loc["kept", "n"]) == len(table), asset
        assert set(table["id"]) == set(store.query(
            "SELECT record_id FROM records WHERE asset_key = ? AND status = 'kept'", [asset])["record_id"])
        assert (counts["runs"] == 1).all()
    summary = store.query("SELECT asset_key, n_kept FROM assets ORDER BY 1")
    assert len(summary) == 3 and summary["n_kept"].min() > 0
