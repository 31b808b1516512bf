"""Materialize the whole asset graph on the bundled sample corpus, offline, into a persistent
Dagster instance (``$DAGSTER_HOME``) so the runs, checks and metadata show in the UI afterwards.

    python -m dagster_project.demo            # every sample shard, then the unpartitioned stages
    python -m dagster_project.demo --shards sample-shard-1
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import dagster as dg


def ensure_dagster_home() -> Path:
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(Path("var/dagster_home").resolve())))
    home.mkdir(parents=True, exist_ok=True)
    cfg = home / "dagster.yaml"
    if not cfg.exists():
        cfg.write_text("telemetry:\n  enabled: false\n")
    return home


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shards", nargs="*", help="sample/inbox shards to run (default: all known)")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    ensure_dagster_home()
    from dagster_project.definitions import defs, register_shards

    instance = dg.DagsterInstance.get()
    shards = register_shards(instance, args.shards)
    print(f"shards: {', '.join(shards)}")
    partitioned = defs.resolve_job_def("synthesis_job")
    downstream = defs.resolve_job_def("training_eval_job")
    ok = True
    t0 = time.time()
    for shard in shards:
        t = time.time()
        res = partitioned.execute_in_process(instance=instance, partition_key=shard, raise_on_error=False)
        print(f"[{'ok' if res.success else 'FAILED'}] synthesis_job[{shard}] in {time.time() - t:.1f}s")
        ok &= res.success
    t = time.time()
    res = downstream.execute_in_process(instance=instance, raise_on_error=False)
    print(f"[{'ok' if res.success else 'FAILED'}] training_eval_job in {time.time() - t:.1f}s")
    ok &= res.success
    print(f"whole graph: {'materialized' if ok else 'FAILED (see the Dagster UI for the failing gate)'} "
          f"in {time.time() - t0:.1f}s; open the UI with `make ui` (dagster dev) to inspect it")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
