"""A one-step job in the GPU pool, run as its own process by test_concurrency_pools (start/end to a file)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import dagster as dg

from dagster_project import pools
from dagster_project.executors import executor_from_env


@dg.asset(pool=pools.GPU)
def pooled_step(context) -> int:  # noqa: ANN001 - dagster resolves the context by name
    start = time.time()
    time.sleep(float(context.run.tags.get("probe_sleep_s", "1.5")))
    out = Path(context.run.tags["probe_out"])
    out.write_text(json.dumps({"start": start, "end": time.time()}))
    return 1


def probe_job(executor: str = "in_process") -> dg.JobDefinition:
    """The probe on ``executor`` (a GME_DATA_EXECUTOR value); a filesystem IO manager so Celery works."""
    job = dg.define_asset_job("probe_job", [pooled_step], executor_def=executor_from_env(executor))
    defs = dg.Definitions(assets=[pooled_step], jobs=[job], resources={"io_manager": dg.FilesystemIOManager()})
    return defs.resolve_job_def("probe_job")


if __name__ == "__main__":
    with dg.DagsterInstance.get() as instance:
        executor = sys.argv[2] if len(sys.argv) > 2 else "in_process"
        # by its import name: Celery workers import the job from there, not from __main__
        recon = dg.build_reconstructable_job("tests.pipeline.pool_probe", probe_job.__name__, (executor,))
        with dg.execute_job(recon, instance=instance,
                            tags={"probe_out": sys.argv[1],
                                  "probe_sleep_s": sys.argv[3] if len(sys.argv) > 3 else "1.5"}) as result:
            sys.exit(0 if result.success else 1)
