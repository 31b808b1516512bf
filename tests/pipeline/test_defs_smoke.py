"""The code location loads: every stage module found, every asset wired to the injected resources,
every job, sensor and schedule resolves."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from assets.common import GATE
from dagster_project.definitions import ASSET_MODULES, HELPER_MODULES, defs
from dagster_project.io_manager import ParquetIOManager
from dagster_project.resources import LineageResource, WorkbenchResource

ASSETS_DIR = Path(__file__).resolve().parents[2] / "assets"


def _executable_assets() -> list[dg.AssetsDefinition]:
    return [a for a in defs.assets if isinstance(a, dg.AssetsDefinition) and a.is_executable]


def test_every_stage_module_of_the_assets_package_is_loaded() -> None:
    on_disk = {p.stem for p in ASSETS_DIR.glob("*.py") if p.stem != "__init__"} - HELPER_MODULES
    assert {m.__name__.removeprefix("assets.") for m in ASSET_MODULES} == on_disk
    defined_in = {a.op.compute_fn.decorated_fn.__module__ for a in _executable_assets()}
    assert defined_in == {m.__name__ for m in ASSET_MODULES}  # each stage module defines assets


def test_gated_stages_get_io_manager_lineage_and_workbench_by_injection() -> None:
    resources = defs.resources
    assert isinstance(resources["io_manager"], ParquetIOManager)
    assert isinstance(resources["lineage"], LineageResource)
    assert isinstance(resources["workbench"], WorkbenchResource)
    gated = [a for a in _executable_assets() if any(k.name == GATE for k in a.check_keys)]
    assert len(gated) >= 10
    for a in gated:
        assert {"io_manager", "lineage", "workbench"} <= set(a.required_resource_keys), a.key
    for a in _executable_assets():
        assert "workbench" in a.required_resource_keys, a.key
        assert set(a.required_resource_keys) <= set(resources), (a.key, a.required_resource_keys)


def test_every_job_sensor_and_schedule_resolves() -> None:
    graph = defs.resolve_asset_graph()
    assert len(graph.get_all_asset_keys()) == 18
    for job in defs.jobs:
        resolved = defs.resolve_job_def(job.name)
        assert resolved.asset_layer.executable_asset_keys, job.name
    assert {s.name for s in defs.sensors} == {"inbox_sensor", "gme_automation"}
    assert [s.name for s in defs.schedules] == ["evaluation_job_schedule"]
    for sensor in defs.sensors:
        assert defs.resolve_sensor_def(sensor.name).name == sensor.name
    for schedule in defs.schedules:
        assert defs.resolve_schedule_def(schedule.name).job_name in {j.name for j in defs.jobs}
