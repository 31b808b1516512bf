"""UMRB evaluation harness: registry, loaders, pytrec-exact metrics, runner, reports, local suite.

Typical use::

    from gme_data.evaluation import umrb_eval
    result, paths = umrb_eval("default", "out/eval", suite="local")
    result.overall, result.tasks, paths["markdown"]

or ``gme-data eval --model default --suite local --out out/eval``. See ``docs`` in each module:
:mod:`~gme_data.evaluation.registry` (47 datasets, presets), :mod:`~gme_data.evaluation.loaders`
(local layout, BEIR / M-BEIR / ViDoRe), :mod:`~gme_data.evaluation.metrics` (trec_eval conventions),
:mod:`~gme_data.evaluation.runner` (caching, exact search, resumability),
:mod:`~gme_data.evaluation.report` (DuckDB, markdown, chart), :mod:`~gme_data.evaluation.local_suite`.
"""

from __future__ import annotations

from gme_data.evaluation.api import umrb_eval
from gme_data.evaluation.errors import (
    BadRowError,
    DatasetFileMissingError,
    DatasetUnavailableError,
    UnknownDatasetError,
    UnknownIdError,
)
from gme_data.evaluation.loaders import EvalDataset, default_data_root, load_local, load_spec
from gme_data.evaluation.metrics import DEFAULT_METRICS, evaluate, evaluate_mean
from gme_data.evaluation.registry import (
    CATEGORIES,
    LOCAL_SUITE,
    PARTIAL,
    PRESETS,
    REGISTRY,
    TASKS,
    UMRB,
    DatasetSpec,
    get_spec,
    select,
)
from gme_data.evaluation.report import PUBLISHED, load_results, markdown_report, write_duckdb, write_reports
from gme_data.evaluation.runner import DatasetResult, SuiteResult, evaluate_dataset, run_suite

__all__ = [
    "CATEGORIES", "DEFAULT_METRICS", "LOCAL_SUITE", "PARTIAL", "PRESETS", "PUBLISHED", "REGISTRY", "TASKS", "UMRB",
    "BadRowError", "DatasetFileMissingError", "DatasetResult", "DatasetSpec", "DatasetUnavailableError",
    "EvalDataset", "SuiteResult", "UnknownDatasetError", "UnknownIdError", "default_data_root", "evaluate",
    "evaluate_dataset", "evaluate_mean", "get_spec", "load_local", "load_results", "load_spec", "markdown_report",
    "run_suite", "select", "umrb_eval", "write_duckdb", "write_reports",
]
