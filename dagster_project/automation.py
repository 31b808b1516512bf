"""Declarative automation: which assets Dagster materializes by itself, and when.

* Per-shard stages (``candidates``, ``generated_queries``, ``fused_queries``, ``filtered_samples``)
  are ``eager``: a shard's stage is requested as soon as its upstream partition lands (the inbox
  sensor still discovers new files and starts ``synthesis_job`` for ``raw_corpus`` and the chain).
* ``umrb_eval`` runs ``on_cron`` (``EVAL_CRON``, Mondays 03:00 UTC by default, changeable with
  ``GME_DATA_EVAL_CRON``) once its upstream ``gme_model`` has been updated since the tick.

Nothing runs until the ``gme_automation`` sensor is on: it is defined stopped (the demo's instance
never starts it); turn it on in the UI (Automation > gme_automation) or with
``dagster sensor start gme_automation`` with the daemon running (docs/operators-guide.md).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import dagster as dg

EVAL_CRON_ENV = "GME_DATA_EVAL_CRON"
EVAL_CRON = "0 3 * * 1"
EAGER = ("candidates", "generated_queries", "fused_queries", "filtered_samples")
SENSOR_NAME = "gme_automation"


def eval_cron() -> str:
    return os.environ.get(EVAL_CRON_ENV, "").strip() or EVAL_CRON


def condition_for(asset: str) -> dg.AutomationCondition | None:
    """The automation condition of ``asset`` (None: only jobs, sensors or people materialize it)."""
    if asset in EAGER:
        return dg.AutomationCondition.eager()
    if asset == "umrb_eval":
        return dg.AutomationCondition.on_cron(eval_cron())
    return None


def with_automation(assets: Iterable[Any]) -> list[Any]:
    """``assets`` with :func:`condition_for` set on each spec that has one."""
    def apply(spec: dg.AssetSpec) -> dg.AssetSpec:
        cond = condition_for(spec.key.to_user_string())
        return spec.replace_attributes(automation_condition=cond) if cond is not None else spec

    return [a.map_asset_specs(apply) if isinstance(a, dg.AssetsDefinition) and a.is_executable else a
            for a in assets]


#: Evaluates every asset's condition each minute once turned on; off by default.
automation_sensor = dg.AutomationConditionSensorDefinition(
    SENSOR_NAME, target=dg.AssetSelection.all(), default_status=dg.DefaultSensorStatus.STOPPED,
    minimum_interval_seconds=60,
    description="Declarative automation of gme_data (per-shard stages eager, umrb_eval on cron); off by default.",
)
