"""The export assets materialized for real on one sample shard: the Hugging Face dataset and its data card,
ms-swift's embedding format read by ms-swift's own loader, and a domain slice's export."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import datasets
import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from gme_data.export.data_card import cell
from gme_data.lineage import LineageStore

REPO = Path(__file__).resolve().parents[2]
LICENSE = "CC-BY-SA-4.0"
SHARD = "licensed-wiki"


@pytest.fixture(scope="module")
def graph(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """One shard (a source spec with a licence, over the sample's wiki_01) through training_set and the exports."""
    home = tmp_path_factory.mktemp("exports") / "var"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GME_DATA_HOME", str(home))
        mp.setenv("GME_DATA_STORAGE_URL", str(home / "storage"))
        mp.delenv("GME_DATA_REPORTS_URL", raising=False)
        from dagster_project.definitions import build_resources, defs, register_shards
        from gme_data.sample_corpus import build_sample_corpus

        manifest = next(m for m in build_sample_corpus(home / "raw" / "sample", show_progress=False)
                        if m.stem == "wiki_01")
        (home / "inbox").mkdir(parents=True, exist_ok=True)
        (home / "inbox" / f"{SHARD}.source.json").write_text(json.dumps(
            {"kind": "wikipedia", "path": str(manifest), "name": "wiki_01", "license": LICENSE}))
        instance = dg.DagsterInstance.ephemeral()
        register_shards(instance, [SHARD])
        assert defs.resolve_job_def("synthesis_job").execute_in_process(instance=instance, partition_key=SHARD).success
        mined = dg.materialize(defs.assets, selection=["hard_negatives", "training_set"], instance=instance,
                               resources=build_resources())
        assert mined.success
        # lineage is final before the cards are written (a card is a snapshot of lineage at export time)
        assert defs.resolve_job_def("domain_datasets_job").execute_in_process(instance=instance,
                                                                              partition_key="animals").success
        domain = defs.resolve_job_def("domain_exports_job").execute_in_process(instance=instance,
                                                                               partition_key="animals")
        assert domain.success
        exports = defs.resolve_job_def("exports_job").execute_in_process(instance=instance)
        assert exports.success
        yield {"home": home, "exports": exports, "domain": domain, "instance": instance,
               "table": pd.read_parquet(home / "storage" / "training_set" / "__all__.parquet"),
               "store": LineageStore(home / "lineage.duckdb")}


def _checks(res: dg.ExecutionResult) -> dict[str, bool]:
    return {e.event_specific_data.asset_key.to_user_string(): e.event_specific_data.passed
            for e in res.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}


def _materialized(res: dg.ExecutionResult, asset: str) -> dict:
    mats = [m for m in res.get_asset_materialization_events() if m.asset_key.to_user_string() == asset]
    assert len(mats) == 1
    return mats[0].materialization.metadata


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"))


def _text(value: object) -> object:
    return value if isinstance(value, str) else None


def test_hf_export_round_trips_with_images(graph: dict) -> None:
    table, res = graph["table"], graph["exports"]
    assert _checks(res) == {"training_set_hf": True, "training_set_swift": True}
    meta = _materialized(res, "training_set_hf")
    out = Path(meta["export_dir"].value)
    assert out == graph["home"] / "exports" / "hf" / "training_set" and meta["hub"].value["pushed"] is False
    disk = datasets.load_from_disk(str(out / "hf_disk"))
    parquet = datasets.load_dataset("parquet", data_dir=str(out / "data"))
    splits = sorted(set(table["split"]))
    assert sorted(disk) == sorted(parquet) == splits
    n_images = 0
    for split in splits:
        view = table[table["split"] == split].reset_index(drop=True)
        got = disk[split].to_pandas()
        assert list(got.columns) == [c for c in view.columns if c != "split"]
        for col in ("id", "combination", "instruction", "query_text", "pos_id", "pos_text", "source_id"):
            assert [_text(v) for v in got[col]] == [_text(v) for v in view[col]], col
        assert [list(v) for v in got["neg_ids"]] == [list(v) for v in view["neg_ids"]]
        assert np.allclose(got["positive_score"], view["positive_score"])
        assert parquet[split]["id"] == disk[split]["id"]
        for row, (_, want) in zip(disk[split], view.iterrows(), strict=True):
            for col in ("query_image", "pos_image"):
                assert (row[col] is None) == (_text(want[col]) is None)
                if row[col] is not None:
                    n_images += 1
                    with Image.open(want[col]) as src:
                        assert np.array_equal(_pixels(row[col]), _pixels(src))
            assert len(row["neg_images"]) == len(want["neg_images"])
    assert n_images > 10


def _card_sections(text: str) -> list[tuple[str, list[list[str]], str]]:
    """(title, table rows as cells, sql) of every section that ends in a SQL block."""
    out = []
    for block in re.split(r"^## ", text, flags=re.M)[1:]:
        m = re.search(r"```sql\n(.*?)\n```", block, flags=re.S)
        if not m:
            continue
        rows = [[c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
                for line in block[: m.start()].splitlines() if line.startswith("|")]
        out.append((block.splitlines()[0], rows[2:], m.group(1)))
    return out


def _assert_card_equals_lineage(card: str, store: LineageStore) -> list[str]:
    sections = _card_sections(card)
    for title, rows, sql in sections:
        want = store.query(sql)
        assert rows == [[cell(v) for v in r] for r in want.itertuples(index=False)], title
    return [t for t, _, _ in sections]


def test_card_numbers_equal_lineage(graph: dict) -> None:
    table, store = graph["table"], graph["store"]
    card_path = Path(_materialized(graph["exports"], "training_set_hf")["data_card"].value)
    card = card_path.read_text()
    header = yaml.safe_load(card.split("---")[1])
    counts = table["split"].value_counts().to_dict()
    assert {s["name"]: s["num_examples"] for s in header["dataset_info"]["splits"]} == counts
    assert header["license"] == LICENSE.lower()
    assert header["configs"][0]["data_files"] == [{"split": s, "path": f"data/{s}-*.parquet"} for s in counts]
    titles = _assert_card_equals_lineage(card, store)
    assert titles == ["Rows per combination and split", "Domains (of each row's positive candidate)",
                      "Sources and licences", "Rows per source", "Query generator: model and prompt versions",
                      "Filters and their thresholds", "Drops per stage and reason", "Hard-negative mining settings",
                      "Hard negatives per row", "Quality gates (Great Expectations)"]
    sections = {t: rows for t, rows, _ in _card_sections(card)}
    by_comb = table.groupby(["combination", "split"]).size()
    assert sorted(sections["Rows per combination and split"]) == sorted(
        [c, s, str(n)] for (c, s), n in by_comb.items())
    assert sum(int(r[1]) for r in sections["Domains (of each row's positive candidate)"]) == len(table)
    assert [r[0] for r in sections["Sources and licences"]] == [SHARD] and sections["Sources and licences"][0][3] == LICENSE
    assert sections["Hard-negative mining settings"][0][2] == "8"
    negatives = table["neg_ids"].map(len).value_counts()
    assert {int(k): int(v) for k, v in sections["Hard negatives per row"]} == negatives.to_dict()
    assert any(r[:2] == ["training_set", "mixture_downsampled"] for r in sections["Drops per stage and reason"])
    assert all(r[2] == "true" for r in sections["Quality gates (Great Expectations)"])


def _swift_python() -> Path:
    venv = Path(os.environ.get("GME_SWIFT_VENV", REPO / ".venv-swift"))
    python = venv / "bin" / "python"
    if not python.is_file():
        pytest.fail(f"no ms-swift virtualenv at {venv}: run `bash scripts/setup-swift.sh` (make test does)")
    return python


def test_ms_swift_loader_reads_the_swift_export(graph: dict) -> None:
    table = graph["table"]
    meta = _materialized(graph["exports"], "training_set_swift")
    out = Path(meta["export_dir"].value)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["HF_DATASETS_CACHE"] = str(graph["home"] / "swift_cache")
    env["MODELSCOPE_CACHE"] = str(graph["home"] / "swift_cache")
    proc = subprocess.run([str(_swift_python()), str(REPO / "tests" / "export" / "swift_reader.py"), str(out)],
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = json.loads(next(x for x in proc.stdout.splitlines() if x.startswith("SWIFT_READ "))[len("SWIFT_READ "):])
    assert sorted(seen["splits"]) == sorted(set(table["split"]))
    for split, rows in seen["splits"].items():
        view = table[table["split"] == split].reset_index(drop=True)
        assert len(rows) == len(view)
        for got, (_, want) in zip(rows, view.iterrows(), strict=True):
            (anchor,) = got["anchor"]
            assert anchor["system"] == _text(want["instruction"])
            assert len(got["positive"]) == 1
            assert len(got["negative"]) == len(want["neg_ids"])
            sides = got["anchor"] + got["positive"] + got["negative"]
            assert all(s["tags"] == len(s["images"]) for s in sides)
            sources = [p for p in [want["query_image"], want["pos_image"], *want["neg_images"]] if _text(p)]
            assert len(got["image_sizes"]) == len(sources)
            for size, src in zip(got["image_sizes"], sources, strict=True):
                with Image.open(src) as im:
                    assert tuple(size) == im.size
    assert sum(len(r) for r in seen["splits"].values()) == len(table)


def test_domain_slice_export_and_card(graph: dict) -> None:
    res = graph["domain"]
    assert _checks(res) == {"domain_datasets_hf": True}
    out = Path(_materialized(res, "domain_datasets_hf")["export_dir"].value)
    animals = pd.read_parquet(graph["home"] / "storage" / "domain_datasets" / "animals.parquet")
    ds = datasets.load_from_disk(str(out / "hf_disk"))
    assert list(ds) == ["train"] and ds["train"]["id"] == list(animals["id"])
    assert set(ds["train"]["domain"]) == {"animals"}
    _assert_card_equals_lineage((out / "README.md").read_text(), graph["store"])
    rows = dict(((r[0]), int(r[2])) for r in _card_sections((out / "README.md").read_text())[0][1])
    assert rows == animals["combination"].value_counts().to_dict()


def test_failed_hub_push_keeps_the_token_out_of_dagster_and_lineage(graph: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    from dagster_project.definitions import build_resources, defs

    token = "hf_NeverLogThisToken987654"
    monkeypatch.setenv("HF_TOKEN", token)
    res = dg.materialize(defs.assets, selection=["training_set_hf"], instance=graph["instance"],
                         resources=build_resources(), raise_on_error=False, run_config={"ops": {"training_set_hf": {
                             "config": {"hub_repo_id": "me/gme-synth", "hub_endpoint": "http://127.0.0.1:9"}}}})
    assert not res.success
    failure = next(e for e in res.all_events if e.event_type_value == "STEP_FAILURE")
    assert "hub push refused" in failure.event_specific_data.error.message
    logs = graph["instance"].all_logs(res.run_id)
    assert logs and not [e for e in logs if token in str(e)]
    for table in ("runs", "assets", "records", "edges"):
        rows = graph["store"].query(f"SELECT count(*) AS n, count_if(t::VARCHAR LIKE '%{token}%') AS leaked "
                                    f"FROM {table} t")
        assert int(rows["leaked"].iloc[0]) == 0 and (table == "edges" or int(rows["n"].iloc[0]) > 0)
    assert (graph["home"] / "exports" / "hf" / "training_set" / "README.md").is_file()  # the local export stands
