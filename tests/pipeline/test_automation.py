"""Declarative automation: the conditions request the expected runs, tick by tick (in-process evaluator)."""

from __future__ import annotations

import datetime

import dagster as dg

CHAIN = ("candidates", "generated_queries", "fused_queries", "filtered_samples")


def _land(instance: dg.DagsterInstance, asset: str, partition: str | None = None) -> None:
    instance.report_runless_asset_event(dg.AssetMaterialization(asset, partition=partition))


def test_per_shard_stages_follow_their_upstream_partition(workbench) -> None:
    from dagster_project.definitions import defs

    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("source_shard", ["shard-a", "shard-b"])
    sel = dg.AssetSelection.assets("raw_corpus", "candidates", "generated_queries", "fused_queries",
                                   "filtered_samples")
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=sel)
    assert tick.total_requested == 0  # nothing landed: nothing to do
    _land(instance, "raw_corpus", "shard-a")
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=sel, cursor=tick.cursor)
    # the shard's whole chain in one request (a stage whose upstream will be requested counts as updated);
    # raw_corpus itself is the inbox sensor's
    assert {k: tick.get_requested_partitions(dg.AssetKey(k)) for k in CHAIN} == dict.fromkeys(CHAIN, {"shard-a"})
    assert tick.total_requested == len(CHAIN)
    for stage in CHAIN:
        _land(instance, stage, "shard-a")
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=sel, cursor=tick.cursor)
    assert tick.total_requested == 0  # requested once; its own results landing asks for nothing more
    _land(instance, "raw_corpus", "shard-b")
    _land(instance, "raw_corpus", "shard-a")  # a re-read of shard-a: its stages again
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=sel, cursor=tick.cursor)
    assert {k: tick.get_requested_partitions(dg.AssetKey(k)) for k in CHAIN} == dict.fromkeys(
        CHAIN, {"shard-a", "shard-b"})


def test_umrb_eval_runs_on_its_cron_after_a_new_model(workbench) -> None:
    from dagster_project.automation import EVAL_CRON, SENSOR_NAME
    from dagster_project.definitions import defs

    assert EVAL_CRON == "0 3 * * 1"
    assert defs.resolve_sensor_def(SENSOR_NAME).default_status == dg.DefaultSensorStatus.STOPPED
    instance = dg.DagsterInstance.ephemeral()
    sel = dg.AssetSelection.assets("umrb_eval")
    monday = datetime.datetime(2026, 11, 30, 2, 0, tzinfo=datetime.timezone.utc)  # a Monday, before 03:00
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=sel,
                                             evaluation_time=monday)
    assert tick.total_requested == 0
    _land(instance, "gme_model")
    later = monday + datetime.timedelta(hours=1, minutes=5)
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=sel,
                                             evaluation_time=later, cursor=tick.cursor)
    assert tick.get_num_requested(dg.AssetKey("umrb_eval")) == 1
    tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=sel,
                                             evaluation_time=later + datetime.timedelta(hours=1), cursor=tick.cursor)
    assert tick.get_num_requested(dg.AssetKey("umrb_eval")) == 0  # once per cron tick
    # the freshness check runs hourly, beside it
    assert tick.total_requested == 1
