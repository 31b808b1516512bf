"""The code location: every asset, check, resource, job, sensor and schedule of gme_data."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

import dagster as dg

import assets
from assets.experiment_grid import ablation_report_job, experiment_grid_job
from dagster_project.automation import automation_sensor, with_automation
from dagster_project.catalog import SourceCatalogResource
from dagster_project.executors import ExecutorConfigError, executor_from_env
from dagster_project.freshness import umrb_eval_freshness
from dagster_project.io_manager import ParquetIOManager
from dagster_project.jobs import (
    domain_datasets_job,
    domain_exports_job,
    evaluation_job,
    evaluation_schedule,
    exports_job,
    inbox_sensor,
    mine_train_job,
    register_shards,
    synthesis_job,
    training_eval_job,
    umrb_datasets_job,
)
from dagster_project.resources import (
    EmbedderResource,
    ImagePoolResource,
    LineageResource,
    LLMResource,
    WorkbenchResource,
)
from dagster_project.versions import with_code_versions

#: modules of the ``assets`` package that hold helpers, not assets
HELPER_MODULES = frozenset({"common"})


def asset_modules() -> list[ModuleType]:
    """Every stage module of the ``assets`` package, by name (a new stage is picked up by being there)."""
    names = sorted(m.name for m in pkgutil.iter_modules(assets.__path__)
                   if not m.ispkg and m.name not in HELPER_MODULES)
    return [importlib.import_module(f"assets.{name}") for name in names]


ASSET_MODULES = asset_modules()
__all__ = ["defs", "job_on_executor", "reconstructable_job_on", "register_shards"]


def build_resources() -> dict:
    return {
        "io_manager": ParquetIOManager(),  # GME_DATA_STORAGE_URL or <GME_DATA_HOME>/storage, read at use
        "workbench": WorkbenchResource(),
        "lineage": LineageResource(),
        "catalog": SourceCatalogResource(),
        "embedder": EmbedderResource(),
        "llm": LLMResource(),
        "image_pool": ImagePoolResource(),
    }


#: every asset with its code version derived from its sources, prompts, suite, config defaults and models
all_assets = with_automation(with_code_versions(dg.load_assets_from_modules(ASSET_MODULES)))

defs = dg.Definitions(
    assets=all_assets,
    asset_checks=[umrb_eval_freshness],
    jobs=[synthesis_job, training_eval_job, mine_train_job, evaluation_job, umrb_datasets_job, domain_datasets_job,
          exports_job, domain_exports_job,
          experiment_grid_job, ablation_report_job],
    sensors=[inbox_sensor, automation_sensor],
    schedules=[evaluation_schedule],
    resources=build_resources(),
    executor=executor_from_env(),
)


def synthesis_job_def() -> dg.JobDefinition:
    """Reconstructable handle on synthesis_job (for the multiprocess executor and tests)."""
    return defs.resolve_job_def("synthesis_job")


def training_eval_job_def() -> dg.JobDefinition:
    """Reconstructable handle on training_eval_job."""
    return defs.resolve_job_def("training_eval_job")


def job_on_executor(job_name: str, executor: str) -> dg.JobDefinition:
    """``job_name`` of the code location with every step on ``executor`` (a GME_DATA_EXECUTOR value).

    Same assets, resources, selection and partitions; only the executor differs. Reconstructable
    with arguments via :func:`reconstructable_job_on`, so remote workers rebuild exactly this job.
    """
    base = next((j for j in defs.jobs if j.name == job_name), None)
    if base is None or not hasattr(base, "selection"):
        raise ExecutorConfigError(f"no asset job named {job_name!r} in dagster_project.definitions")
    job = dg.define_asset_job(
        base.name, selection=base.selection, config=base.config, description=base.description,
        tags=base.tags, run_tags=base.run_tags, metadata=base.metadata, partitions_def=base.partitions_def,
        executor_def=executor_from_env(executor), hooks=base.hooks, op_retry_policy=base.op_retry_policy,
    )
    return dg.Definitions(assets=all_assets, jobs=[job], resources=build_resources()).resolve_job_def(job_name)


def reconstructable_job_on(job_name: str, executor: str) -> dg.ReconstructableJob:
    """A reconstructable handle on :func:`job_on_executor` (what ``dg.execute_job`` and workers need)."""
    return dg.build_reconstructable_job(__name__, job_on_executor.__name__, (job_name, executor))
