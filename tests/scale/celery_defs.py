"""Reconstructable jobs on the celery executor, importable by the test and by the Celery workers.

Assets, resources and selections are those of ``dagster_project.definitions``; only the executor
differs (broker/backend from ``GME_DATA_CELERY_BROKER`` / ``GME_DATA_CELERY_BACKEND``).
"""

from __future__ import annotations

import dagster as dg

from dagster_project.definitions import job_on_executor


def celery_synthesis_job() -> dg.JobDefinition:
    """synthesis_job with every step a Celery task."""
    return job_on_executor("synthesis_job", "celery")
