"""Freshness of the evaluation: a non-blocking check that warns when ``umrb_eval`` no longer
describes the current model (a newer ``gme_model`` exists) or is older than a set age.

The age limit is ``$GME_DATA_UMRB_EVAL_MAX_AGE_H`` hours (default 192: the weekly evaluation cron
plus a day). The check runs hourly once automation is on, and with every run that materializes
``umrb_eval``.
"""


import os
import time

import dagster as dg

MAX_AGE_ENV = "GME_DATA_UMRB_EVAL_MAX_AGE_H"
DEFAULT_MAX_AGE_H = 192.0
CHECK_NAME = "umrb_eval_freshness"


def max_age_hours() -> float:
    raw = os.environ.get(MAX_AGE_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_AGE_H
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{MAX_AGE_ENV}={raw!r}: expected a number of hours") from None
    if value <= 0:
        raise ValueError(f"{MAX_AGE_ENV}={raw!r}: expected a positive number of hours")
    return value


def evaluate_freshness(instance: dg.DagsterInstance, now: float | None = None,
                       max_age_h: float | None = None) -> dg.AssetCheckResult:
    """Compare the latest ``umrb_eval`` with the latest ``gme_model`` and with the age limit."""
    now = time.time() if now is None else now
    limit_h = max_age_hours() if max_age_h is None else max_age_h
    evaluation = instance.get_latest_materialization_event(dg.AssetKey("umrb_eval"))
    model = instance.get_latest_materialization_event(dg.AssetKey("gme_model"))
    problems: list[str] = []
    metadata: dict[str, object] = {"max_age_hours": limit_h}
    if evaluation is None:
        problems.append("umrb_eval was never materialized")
    else:
        age_h = (now - evaluation.timestamp) / 3600
        metadata["umrb_eval_age_hours"] = round(age_h, 2)
        metadata["umrb_eval_run"] = evaluation.run_id
        if model is not None and model.timestamp > evaluation.timestamp:
            problems.append(f"umrb_eval is older than the newest gme_model (run {model.run_id}, "
                            f"{(model.timestamp - evaluation.timestamp) / 3600:.1f} h later)")
        if age_h > limit_h:
            problems.append(f"umrb_eval is {age_h:.1f} h old (limit {limit_h:g} h, {MAX_AGE_ENV})")
    if model is not None:
        metadata["gme_model_run"] = model.run_id
    return dg.AssetCheckResult(
        check_name=CHECK_NAME, asset_key=dg.AssetKey("umrb_eval"), passed=not problems,
        severity=dg.AssetCheckSeverity.WARN, metadata=metadata,
        description="; ".join(problems) or "umrb_eval describes the newest gme_model and is within its age limit")


@dg.asset_check(asset="umrb_eval", name=CHECK_NAME, blocking=False,
                automation_condition=dg.AutomationCondition.cron_tick_passed("0 * * * *"),
                description="Warns when umrb_eval is older than the newest gme_model or than "
                            f"${MAX_AGE_ENV} hours (default {DEFAULT_MAX_AGE_H:g})")
def umrb_eval_freshness(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    return evaluate_freshness(context.instance)
