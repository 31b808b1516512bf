"""Training-set mixture, split and export."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from gme_data.errors import InvalidInputError
from gme_data.records import COMBINATIONS
from gme_data.training import (
    TrainingSetConfig,
    build_training_set,
    check_negatives_distinct,
    check_no_split_leakage,
    check_ratios,
    export_training_set,
    read_training_jsonl,
    split_of,
    validate_training_set,
)


def _rows(counts: dict[str, int], docs_per_source: int = 3) -> pd.DataFrame:
    rows = []
    for comb, n in counts.items():
        q, c = comb.split("->")
        for i in range(n):
            sid = f"{comb}-{i}"
            rows.append(dict(
                id=sid, combination=comb, instruction="Find it.",
                query_text=f"q {sid}" if "T" in q else None, query_image="/img/q.png" if "I" in q else None,
                pos_id=f"p-{sid}", pos_text=f"p {sid}" if "T" in c else None,
                pos_image=f"/img/p{i}.png" if "I" in c else None,
                source_id=f"doc-{comb}-{i // docs_per_source}",
                neg_ids=[f"n1-{sid}", f"n2-{sid}"], neg_texts=[f"n1 {sid}", None],
                neg_images=[None, "/img/n.png"], neg_scores=[0.5, 0.4]))
    return pd.DataFrame(rows)


def test_ratios_respected_and_renormalised():
    counts = {"T->T": 400, "I->I": 50, "T->I": 300, "IT->T": 120}
    ratios = {"T->T": 0.4, "I->I": 0.1, "T->I": 0.3, "IT->T": 0.1, "IT->IT": 0.1}  # IT->IT absent
    res = build_training_set(_rows(counts), ratios=ratios, validation_fraction=0.2, tolerance=0.01)
    t = res.table
    shares = t.combination.value_counts(normalize=True)
    assert shares["T->T"] == pytest.approx(4 / 9, abs=0.01)
    assert shares["I->I"] == pytest.approx(1 / 9, abs=0.01)
    assert res.report["ratios_ok"] and check_ratios(t, ratios, 0.01) == []
    assert len(t) == 450                              # bounded by I->I: 50 / (1/9)
    assert res.report["drop_reasons"] == {"mixture_downsampled": 870 - 450}
    assert res.report["mixture"]["combinations"]["T->T"]["all"]["target"] == pytest.approx(4 / 9, abs=1e-5)
    # a total caps the size with the same shares; a combination with ratio 0 is dropped with a reason
    res = build_training_set(_rows(counts), ratios={**ratios, "T->I": 0}, total=60)
    assert len(res.table) == 60 and "T->I" not in set(res.table.combination)
    assert res.report["drop_reasons"]["combination_not_in_mixture"] == 300
    # a skewed table fails the ratio check
    assert check_ratios(_rows(counts), ratios, 0.02)


def test_split_has_no_leakage_and_is_deterministic():
    df = _rows({c: 60 for c in COMBINATIONS})
    a = build_training_set(df, validation_fraction=0.25, seed=1)
    b = build_training_set(df.sample(frac=1.0, random_state=7), validation_fraction=0.25, seed=1)
    assert check_no_split_leakage(a.table) == []
    ma = dict(zip(a.table.id, a.table.split, strict=True))
    mb = dict(zip(b.table.id, b.table.split, strict=True))
    assert ma == mb
    n_val = (a.table.split == "validation").sum()
    assert 0.1 < n_val / len(a.table) < 0.4
    # every source lands wholly in one split, and the split is a pure function of the source id
    for sid, grp in a.table.groupby("source_id"):
        assert set(grp.split) == {split_of(sid, 0.25)}
    bad = a.table.copy()
    bad.loc[bad.index[0], "split"] = "validation" if bad.loc[bad.index[0], "split"] == "train" else "train"
    same_src = bad.source_id == bad.loc[bad.index[0], "source_id"]
    if same_src.sum() > 1:
        assert check_no_split_leakage(bad)
    # lineage: one record per input row
    assert len(a.lineage.records) == len(df)


def test_negative_checks_and_validation():
    df = build_training_set(_rows({"T->T": 10, "T->I": 10}), ratios={"T->T": 1, "T->I": 1}).table
    assert check_negatives_distinct(df) == []
    bad = df.copy()
    bad.at[0, "neg_ids"] = [bad.at[0, "pos_id"], "x"]
    bad.at[1, "neg_texts"] = [bad.at[1, "pos_text"], None]
    bad.at[1, "neg_images"] = [bad.at[1, "pos_image"], "/img/n.png"]
    problems = check_negatives_distinct(bad)
    assert len(problems) == 2 and "positive's id" in problems[0] and "content" in problems[1]
    v = validate_training_set(bad, {"T->T": 1, "T->I": 1})
    assert not v["ok"] and v["negatives"] and not v["leakage"] and not v["ratios"]


def test_export_parquet_and_jsonl(tmp_path):
    res = build_training_set(_rows({"T->T": 20, "IT->I": 20}), ratios={"T->T": 1, "IT->I": 1},
                             validation_fraction=0.3)
    paths = export_training_set(res.table, tmp_path)
    assert set(paths) == {"parquet", "train", "validation"}
    back = pd.read_parquet(paths["parquet"])
    assert list(back.id) == list(res.table.id) and list(back.neg_ids.iloc[0]) == list(res.table.neg_ids.iloc[0])
    first = json.loads(open(paths["train"]).readline())
    assert set(first) >= {"query", "positive", "negatives", "instruction"}
    if first["combination"] == "IT->I":
        assert set(first["query"]) == {"text", "image"} and set(first["positive"]) == {"image", "id"}
    else:
        assert set(first["query"]) == {"text"}
    assert first["negatives"][0]["text"].startswith("n1") and "image" not in first["negatives"][0]
    rt = pd.concat([read_training_jsonl(paths["train"]), read_training_jsonl(paths["validation"])])
    assert sorted(rt.id) == sorted(res.table.id)


def test_named_errors():
    with pytest.raises(InvalidInputError, match="unknown combination"):
        TrainingSetConfig(ratios={"X->Y": 1})
    df = _rows({"T->T": 3})
    df.loc[1, "combination"] = "T->Q"
    with pytest.raises(InvalidInputError, match="T->Q"):
        build_training_set(df)
    with pytest.raises(InvalidInputError, match="duplicate"):
        build_training_set(pd.concat([_rows({"T->T": 2}), _rows({"T->T": 1})]))
    with pytest.raises(InvalidInputError, match="positive ratio"):
        build_training_set(_rows({"T->T": 3}), ratios={"I->I": 1})
