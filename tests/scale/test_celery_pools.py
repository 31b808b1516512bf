"""dagster-celery honours the instance's concurrency pools: two runs at once, real Redis, two real workers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from dagster_project import pools
from tests.scale.services import celery_workers, redis_server

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.celery
@pytest.mark.slow
def test_two_celery_runs_on_one_pool_take_turns(tmp_path: Path) -> None:
    home = tmp_path / "dagster_home"
    pools.write_instance_config(home)
    with dg.DagsterInstance.from_config(str(home)) as instance:  # create the storage once, before any worker
        assert instance.event_log_storage.get_concurrency_info(pools.GPU).limit == 1
        pools.apply_pool_limits(instance)
        assert instance.event_log_storage.get_concurrency_info(pools.GPU).slot_count == 1
    with redis_server(tmp_path / "redis") as url:
        broker, backend = f"{url}/0", f"{url}/1"
        env = {"DAGSTER_HOME": str(home), "GME_DATA_CELERY_BROKER": broker, "GME_DATA_CELERY_BACKEND": backend}
        with celery_workers(broker, backend, tmp_path / "celery", n=2, env=env) as workers:
            outs = [tmp_path / f"run{i}.json" for i in range(2)]
            run_env = {**os.environ, **env}
            procs = [subprocess.Popen([sys.executable, "-m", "tests.pipeline.pool_probe", str(o), "celery", "8"],
                                      env=run_env, cwd=REPO) for o in outs]
            codes = [p.wait(timeout=150) for p in procs]
            logs = "\n".join(p.read_text(errors="replace") for p in workers.logs)
            assert codes == [0, 0], logs[-4000:]
            assert logs.count("Task execute_plan[") >= 2  # both steps ran as Celery tasks
    spans = sorted((d["start"], d["end"]) for d in (json.loads(o.read_text()) for o in outs))
    assert spans[1][0] >= spans[0][1], f"the pool let two Celery steps overlap: {spans}"
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.event_log_storage.get_concurrency_info(pools.GPU).claimed_slots == []
