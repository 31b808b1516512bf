"""The code location: every asset, check, resource, job, sensor and schedule of gme_data."""

from __future__ import annotations

import dagster as dg

from assets import candidates as candidates_module
from assets import domain_datasets as domain_datasets_module
from assets import experiment_grid as experiment_grid_module
from assets import exports as exports_module
from assets import filtered_samples as filtered_samples_module
from assets import fused_queries as fused_queries_module
from assets import generated_queries as generated_queries_module
from assets import gme_model as gme_model_module
from assets import hard_negatives as hard_negatives_module
from assets import raw_corpus as raw_corpus_module
from assets import training_set as training_set_module
from assets import umrb_dataset_eval as umrb_dataset_eval_module
from assets import umrb_eval as umrb_eval_module
from dagster_project.automation import automation_sensor, with_automation
from dagster_project.catalog import SourceCatalogResource
from dagster_project.executors import executor_from_env
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

ASSET_MODULES = [
    raw_corpus_module, candidates_module, generated_queries_module, fused_queries_module,
    filtered_samples_module, hard_negatives_module, training_set_module, gme_model_module, umrb_eval_module,
    umrb_dataset_eval_module, domain_datasets_module, exports_module,
    experiment_grid_module,  # issue 24: the experiment grid and its ablation report
]
__all__ = ["defs", "register_shards"]


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
          experiment_grid_module.experiment_grid_job, experiment_grid_module.ablation_report_job],
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
