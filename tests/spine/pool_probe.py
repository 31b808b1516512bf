"""A one-step job in the GPU pool, run as its own process by test_concurrency_pools (start/end to a file)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import dagster as dg

from dagster_project import pools


@dg.asset(pool=pools.GPU)
def pooled_step(context) -> int:  # noqa: ANN001 - dagster resolves the context by name
    start = time.time()
    time.sleep(1.5)
    out = Path(context.run.tags["probe_out"])
    out.write_text(json.dumps({"start": start, "end": time.time()}))
    return 1


def probe_job() -> dg.JobDefinition:
    defs = dg.Definitions(assets=[pooled_step], jobs=[dg.define_asset_job("probe_job", [pooled_step])],
                          resources={"io_manager": dg.InMemoryIOManager()})
    return defs.resolve_job_def("probe_job")


if __name__ == "__main__":
    with dg.DagsterInstance.get() as instance:
        with dg.execute_job(dg.reconstructable(probe_job), instance=instance,
                            tags={"probe_out": sys.argv[1]}) as result:
            sys.exit(0 if result.success else 1)
