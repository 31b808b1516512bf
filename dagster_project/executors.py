"""The executor every job runs on, chosen by ``GME_DATA_EXECUTOR``.

* ``multiprocess`` (default): dagster's multiprocess executor, one process per step on this machine
  (``GME_DATA_MAX_CONCURRENT`` caps the processes; unset = one per CPU).
* ``in_process``: every step in the run's own process (debugging, tiny shards).
* ``celery``: dagster-celery; steps become Celery tasks on a broker and run on any machine with a
  worker (``GME_DATA_CELERY_BROKER``, ``GME_DATA_CELERY_BACKEND``; default a Redis on localhost).
  Needs the optional ``dagster-celery`` package, imported only when selected.

See docs/scale-out.md for the production set-up.
"""

from __future__ import annotations

import os

import dagster as dg

from gme_data.errors import GmeDataError

EXECUTOR_ENV = "GME_DATA_EXECUTOR"
BROKER_ENV = "GME_DATA_CELERY_BROKER"
BACKEND_ENV = "GME_DATA_CELERY_BACKEND"
MAX_CONCURRENT_ENV = "GME_DATA_MAX_CONCURRENT"
DEFAULT_BROKER = "redis://localhost:6379/0"
DEFAULT_BACKEND = "redis://localhost:6379/1"
CHOICES = ("multiprocess", "in_process", "celery")


class ExecutorConfigError(GmeDataError, ValueError):
    """``GME_DATA_EXECUTOR`` (or one of its settings) names something that cannot be used."""


class CeleryNotInstalledError(GmeDataError, ImportError):
    """The celery executor was selected but ``dagster-celery`` is not importable."""


def celery_settings() -> dict[str, str]:
    """Broker and result-backend URLs for the celery executor, from the environment."""
    return {
        "broker": os.environ.get(BROKER_ENV) or DEFAULT_BROKER,
        "backend": os.environ.get(BACKEND_ENV) or DEFAULT_BACKEND,
    }


def celery_executor_def(broker: str | None = None, backend: str | None = None) -> dg.ExecutorDefinition:
    """dagster-celery's executor bound to ``broker``/``backend`` (default: from the environment)."""
    try:
        from dagster_celery import celery_executor
    except ImportError as exc:
        raise CeleryNotInstalledError(
            f"{EXECUTOR_ENV}=celery needs the dagster-celery package (plus celery and a broker client, "
            f"e.g. `pip install dagster-celery celery redis`): {exc}"
        ) from exc
    cfg = celery_settings()
    return celery_executor.configured(
        {"broker": broker or cfg["broker"], "backend": backend or cfg["backend"]},
        name="gme_celery",
    )


def executor_from_env(choice: str | None = None) -> dg.ExecutorDefinition:
    """The executor named by ``choice`` or ``GME_DATA_EXECUTOR`` (multiprocess when unset)."""
    name = (choice if choice is not None else os.environ.get(EXECUTOR_ENV, "")).strip().lower()
    name = name.replace("-", "_") or "multiprocess"
    if name == "multiprocess":
        raw = os.environ.get(MAX_CONCURRENT_ENV, "").strip()
        if not raw:
            return dg.multiprocess_executor
        if not raw.isdigit() or int(raw) < 1:
            raise ExecutorConfigError(f"{MAX_CONCURRENT_ENV}={raw!r}: expected a positive integer")
        return dg.multiprocess_executor.configured({"max_concurrent": int(raw)}, name="gme_multiprocess")
    if name == "in_process":
        return dg.in_process_executor
    if name == "celery":
        return celery_executor_def()
    raise ExecutorConfigError(f"{EXECUTOR_ENV}={name!r} is unknown; choose one of {', '.join(CHOICES)}")
