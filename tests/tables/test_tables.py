"""gme_data.tables: the one missing-value rule and the table helpers every stage shares."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from gme_data.errors import InvalidInputError
from gme_data.evaluation.runner import DatasetResult, SuiteResult
from gme_data.tables import (
    clean,
    corpus_text,
    dataset_rows,
    is_missing,
    pair_key,
    require_columns,
    strict_text,
    text_or_none,
    value_or_none,
)

MISSING = [None, pd.NA, float("nan"), np.float32("nan"), "", "   \t"]
PRESENT = [" oak ", "oak", 0, 0.0, False, ["a"]]


@pytest.mark.parametrize("value", MISSING)
def test_every_reader_maps_a_missing_cell_to_none(value) -> None:
    assert is_missing(value)
    assert clean(value) is None and value_or_none(value) is None and text_or_none(value) is None
    assert strict_text(value, "text", "r1") is None


@pytest.mark.parametrize("value", PRESENT)
def test_present_values_are_not_missing(value) -> None:
    assert not is_missing(value)
    assert value_or_none(value) is value


def test_readers_differ_only_in_what_they_return_for_present_values() -> None:
    assert clean("  Oak tree ") == "Oak tree"
    assert value_or_none("  Oak tree ") == "  Oak tree "  # mining / training / exports pass text on as stored
    assert clean(7) == 7 and text_or_none(7) == "7" and text_or_none(" x ") == "x"
    assert strict_text(" Oak ", "title", "r1") == "Oak"
    with pytest.raises(InvalidInputError, match=r"candidates row 'r1': column 'title' must be str or None, got int"):
        strict_text(3, "title", "r1")


def test_corpus_text_joins_title_once() -> None:
    assert corpus_text("Oak", "A tree of the genus Quercus.") == "Oak A tree of the genus Quercus."
    assert corpus_text("Oak", "Oak is a tree.") == "Oak is a tree."
    assert corpus_text(" Oak ", None) == "Oak"
    assert corpus_text(float("nan"), "  Fern. ") == "Fern."
    assert corpus_text(None, "") is None


def test_require_columns_names_the_table_and_what_is_missing() -> None:
    df = pd.DataFrame({"id": ["a"], "text": ["x"]})
    require_columns(df, ("id", "text"), "samples")
    with pytest.raises(InvalidInputError, match=r"samples table: missing columns \['image'\] \(has \['id', 'text'\]\)"):
        require_columns(df, ("id", "image"), "samples")
    with pytest.raises(InvalidInputError, match="pool: expected a pandas DataFrame, got dict"):
        require_columns({"id": []}, ("id",), "pool")


def test_pair_key_is_one_string_per_pair_with_missing_as_empty() -> None:
    df = pd.DataFrame({"qt": ["q", "q", None], "qi": [None, None, "a.png"], "pt": ["p", "p", "p"],
                       "pi": [None, "b.png", None]})
    keys = pair_key(df, "qt", "qi", "pt", "pi")
    assert list(keys) == ["q\x1f\x1fp\x1f", "q\x1f\x1fp\x1fb.png", "\x1fa.png\x1fp\x1f"]
    assert keys.is_unique


def test_dataset_rows_one_row_per_dataset_with_every_metric() -> None:
    d = DatasetResult(dataset="local-t2t", name="Local T2T", task="T->T", category="retrieval", metric="ndcg@10",
                      metric_key="ndcg_at_10", main_score=61.5, scores={"ndcg@10": 61.5, "recall@5": 70.0},
                      num_queries=20, num_candidates=40, model="m", settings_hash="h", seconds=1.5)
    rows = dataset_rows(SuiteResult(model="m", suite="local", datasets={"local-t2t": d}), "base")
    assert len(rows) == 1
    row = rows[0]
    assert (row["model"], row["model_name"], row["dataset"], row["score"]) == ("base", "m", "local-t2t", 61.5)
    assert row["m_ndcg_at_10"] == 61.5 and math.isclose(row["m_recall_at_5"], 70.0)
    assert row["num_queries"] == 20 and row["corpus_from_cache"] is False
