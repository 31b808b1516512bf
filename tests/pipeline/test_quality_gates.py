"""Great Expectations suites: substitution, failure summaries with row examples, HTML report."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from gme_data.errors import InvalidInputError
from quality.gates import run_gate
from quality.report import write_report

DOMAINS = ["animals", "plants"]


def _params(**over):
    p = {"min_rows": 1, "max_rows": 100, "min_text_chars": 10, "max_text_chars": 1000, "domains": DOMAINS,
         "min_confidence": 0.5, "domain_partition": {"values": DOMAINS, "weights": [0.5, 0.5]},
         "max_domain_kl": 0.5}
    p.update(over)
    return p


def _good() -> pd.DataFrame:
    return pd.DataFrame({
        "id": ["a", "b", "c", "d"], "title": ["Cat", "Oak", "Dog", "Fern"],
        "text": ["The cat is a small carnivore.", "The oak is a tree of the genus Quercus.",
                 "The dog is a domesticated wolf.", "Ferns reproduce by spores."],
        "image": [None, None, None, None], "source": "s", "shard": "s", "url": None,
        "domain": ["animals", "plants", "animals", "plants"], "domain_confidence": [0.9, 0.8, 0.7, 0.95],
    })


def test_clean_table_passes() -> None:
    res = run_gate(_good(), "candidates", _params())
    assert res.success, res.headline()
    assert len(res.outcomes) >= 8


def test_failures_name_expectation_count_and_examples() -> None:
    df = _good()
    df.loc[1, "domain"] = "astrology"
    df.loc[2, "id"] = "a"
    df.loc[3, "domain_confidence"] = 0.2
    res = run_gate(df, "candidates", _params())
    assert not res.success
    failed = {(o.expectation, o.column): o for o in res.failed}
    dom = failed[("expect_column_values_to_be_in_set", "domain")]
    assert dom.unexpected_count == 1 and dom.examples[0] == {"id": "b", "domain": "astrology"}
    assert failed[("expect_column_values_to_be_unique", "id")].unexpected_count == 2
    assert failed[("expect_column_values_to_be_between", "domain_confidence")].examples[0]["id"] == "d"
    assert "domain" in res.headline()


def test_domain_imbalance_fails_the_distribution_check() -> None:
    df = pd.concat([_good()] * 5, ignore_index=True)
    df["id"] = [f"r{i}" for i in range(len(df))]
    df["text"] = [f"Paragraph number {i} about animals." for i in range(len(df))]
    df.loc[: len(df) - 2, "domain"] = "animals"
    res = run_gate(df, "candidates", _params(max_domain_kl=0.1))
    kl = [o for o in res.failed if o.expectation == "expect_column_kl_divergence_to_be_less_than"]
    assert kl and kl[0].observed_value > 0.1


def test_row_count_bounds_follow_config() -> None:
    res = run_gate(_good(), "candidates", _params(min_rows=10))
    assert [o.expectation for o in res.failed] == ["expect_table_row_count_to_be_between"]


def test_missing_parameter_is_a_named_error() -> None:
    with pytest.raises(InvalidInputError, match="min_text_chars"):
        run_gate(_good(), "candidates", {"max_rows": 3})


def test_unknown_suite_is_a_named_error() -> None:
    with pytest.raises(InvalidInputError, match="no_such_suite"):
        run_gate(_good(), "no_such_suite", {})


def test_html_report_lists_failures_and_index(tmp_path: Path) -> None:
    df = _good()
    df.loc[0, "text"] = "short"
    res = run_gate(df, "candidates", _params())
    path = write_report(res, df, tmp_path, "candidates", "run-1", "sample-a")
    page = path.read_text()
    assert "FAILED" in page and "expect_column_value_lengths_to_be_between" in page and "short" in page
    index = (tmp_path / "run-1" / "index.html").read_text()
    assert "candidates" in index and "FAILED" in index
