"""Materialize the whole asset graph on the bundled sample corpus, offline, into a persistent
Dagster instance (``$DAGSTER_HOME``) so the runs, checks and metadata show in the UI afterwards.
Queries are written by the local model (llama.cpp server + bundled SmolLM2-135M GGUF) unless
``GME_DATA_LLM_BACKEND`` / ``GME_DATA_LLM_BASE_URL`` choose another generator.

    python -m dagster_project.demo            # every sample shard, the unpartitioned stages, then the
                                              # per-domain slices and the local per-dataset evaluations
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
    """``$DAGSTER_HOME`` (default var/dagster_home) with a dagster.yaml: telemetry off and the pool
    limits of :mod:`dagster_project.pools`. An existing dagster.yaml is kept as it is."""
    from dagster_project.pools import write_instance_config

    home = Path(os.environ.setdefault("DAGSTER_HOME", str(Path("var/dagster_home").resolve())))
    cfg = write_instance_config(home, overwrite=False)
    if "concurrency:" not in cfg.read_text():
        print(f"note: {cfg} sets no concurrency pools; see docs/operators-guide.md (Concurrency pools)")
    return home


def _run_partitions(instance: dg.DagsterInstance, defs: dg.Definitions, job_name: str, keys: list[str]) -> bool:
    """One run per partition (what a UI backfill launches), tagged as one demo backfill."""
    job = defs.resolve_job_def(job_name)
    t = time.time()
    failed = [k for k in keys if not job.execute_in_process(
        instance=instance, partition_key=k, raise_on_error=False, tags={"gme_data/demo_backfill": job_name}).success]
    print(f"[{'ok' if not failed else 'FAILED'}] {job_name} over {len(keys)} partitions in {time.time() - t:.1f}s"
          + (f"; failed: {failed}" if failed else ""))
    return not failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shards", nargs="*", help="sample/inbox shards to run (default: all known)")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    ensure_dagster_home()
    from dagster_project.definitions import defs, register_shards
    from dagster_project.partitions import domains, umrb_datasets

    instance = dg.DagsterInstance.get()
    from dagster_project.pools import apply_pool_limits

    apply_pool_limits(instance)  # each pool's slots exist before any run claims one
    shards = register_shards(instance, args.shards)
    print(f"shards: {', '.join(shards)}")
    from dagster_project.resources import LLMResource

    gen = LLMResource().generation_config()
    print(f"query generator: {gen.generator} ({gen.model_name}); GME_DATA_LLM_BACKEND=offline-rules for the rules")
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
    if res.success:
        ok &= _run_partitions(instance, defs, "domain_datasets_job", domains.get_partition_keys())
        ok &= _run_partitions(instance, defs, "umrb_datasets_job", [k for k in umrb_datasets.get_partition_keys()
                                                                      if k.startswith("local_")])
        t = time.time()
        res = defs.resolve_job_def("exports_job").execute_in_process(instance=instance, raise_on_error=False)
        print(f"[{'ok' if res.success else 'FAILED'}] exports_job (Hugging Face dataset + card, ms-swift) "
              f"in {time.time() - t:.1f}s")
        ok &= res.success
    print(f"whole graph: {'materialized' if ok else 'FAILED (see the Dagster UI for the failing gate)'} "
          f"in {time.time() - t0:.1f}s; open the UI with `make ui` (dagster dev) to inspect it")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
