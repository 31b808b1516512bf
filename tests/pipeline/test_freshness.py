"""The umrb_eval freshness check: warns (never blocks) on an evaluation older than the model or than its age limit."""

from __future__ import annotations

import time

import dagster as dg
import pytest

from dagster_project.freshness import CHECK_NAME, MAX_AGE_ENV, umrb_eval_freshness


def _land(instance: dg.DagsterInstance, asset: str) -> None:
    instance.report_runless_asset_event(dg.AssetMaterialization(asset))
    time.sleep(0.01)  # distinct timestamps


def _check(instance: dg.DagsterInstance) -> dg.AssetCheckResult:
    return umrb_eval_freshness(dg.build_asset_check_context(instance=instance))


def test_freshness_warns_when_the_model_is_newer_or_the_evaluation_too_old(monkeypatch) -> None:
    from dagster_project.definitions import defs

    spec = defs.resolve_asset_graph().get_check_spec(dg.AssetCheckKey(dg.AssetKey("umrb_eval"), CHECK_NAME))
    assert spec.blocking is False
    instance = dg.DagsterInstance.ephemeral()
    first = _check(instance)
    assert not first.passed and "never materialized" in first.description
    assert first.severity == dg.AssetCheckSeverity.WARN
    _land(instance, "gme_model")
    _land(instance, "umrb_eval")
    assert _check(instance).passed
    _land(instance, "gme_model")
    stale = _check(instance)
    assert not stale.passed and "older than the newest gme_model" in stale.description
    _land(instance, "umrb_eval")
    assert _check(instance).passed
    monkeypatch.setenv(MAX_AGE_ENV, "0.000001")  # a few milliseconds
    time.sleep(0.05)
    old = _check(instance)
    assert not old.passed and "h old (limit" in old.description
    monkeypatch.setenv(MAX_AGE_ENV, "soon")
    with pytest.raises(ValueError, match=MAX_AGE_ENV):
        _check(instance)
