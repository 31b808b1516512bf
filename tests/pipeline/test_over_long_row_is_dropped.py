"""Finding 10 of issue 14: one over-long CSV row is a recorded drop at raw_corpus, and the shard's
candidates gate (``max_text_chars``) still passes, in a real Dagster run on an inbox shard."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pandas as pd

from gme_data.lineage import LineageStore
from gme_data.sample_corpus.build import load_articles


def test_over_long_csv_row_is_dropped_and_the_shard_passes_its_gates(workbench: Path) -> None:
    from dagster_project.definitions import defs, register_shards

    articles = load_articles("wiki_01")
    rows = [{"title": a["title"], "text": a["paragraphs"][0]["text"]} for a in articles]
    rows.append({"title": articles[0]["title"], "text": " ".join([articles[0]["paragraphs"][0]["text"]] * 80)})
    assert len(rows[-1]["text"]) > 20_000
    inbox = workbench / "inbox"
    inbox.mkdir(parents=True)
    pd.DataFrame(rows).to_csv(inbox / "long-rows.csv", index=False)

    instance = dg.DagsterInstance.ephemeral()
    register_shards(instance)
    job = defs.resolve_job_def("synthesis_job")
    res = job.execute_in_process(instance=instance, partition_key="long-rows", raise_on_error=False,
                                 asset_selection=[dg.AssetKey("raw_corpus"), dg.AssetKey("candidates")])
    checks = {e.event_specific_data.asset_key.to_user_string(): e.event_specific_data.passed
              for e in res.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}
    assert res.success and checks == {"raw_corpus": True, "candidates": True}, checks
    store = LineageStore(workbench / "lineage.duckdb")
    assert dict(zip(*store.drops("raw_corpus", "long-rows").to_dict("list").values(), strict=True)) \
        == {"field_too_long": 1}
    (drop,) = store.dropped("raw_corpus", reason="field_too_long").to_dict("records")
    assert "long-rows.csv row 27: text has" in json.dumps(drop, default=str)
    raw = pd.read_parquet(workbench / "storage" / "raw_corpus" / "long-rows.parquet")
    assert len(raw) == len(rows) - 1 and raw["text"].str.len().max() <= 20_000
