"""A variant's training data: shared tables used as they are, recomputed in process only where it overrides
them; data-source requirements and family limits refused with messages naming the variant."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from gme_data.errors import InvalidInputError
from gme_data.experiments.grid import parse_grid
from gme_data.experiments.runner import Backend, SharedInputs, model_key, table_hash, variant_data
from gme_data.mining import MiningConfig, mine_hard_negatives
from gme_data.retrieval.offline import OfflineEmbedder
from gme_data.training import TrainingSetConfig, build_training_set
from tests.experiments.tiny import filtered_samples

GRID = parse_grid({"schema_version": 1, "seeds": [0], "variants": {
    "baseline": {},
    "no_hard_negatives": {"data": {"hard_negatives": False}},
    "small_mix": {"training_set": {"total": 10}},
    "negatives_k2": {"mining": {"k": 2, "min_negatives": 0}},
    "data_rules": {"data": {"queries": "rules"}},
    "data_llm": {"data": {"queries": "llm"}},
    "lora_mean": {"model": {"family": "gme-lora", "pooling": "mean"}},
}}, Path("grid.yaml"))


@pytest.fixture(scope="module")
def embedder() -> OfflineEmbedder:
    return OfflineEmbedder(ocr=False)


@pytest.fixture(scope="module")
def inputs(embedder: OfflineEmbedder) -> SharedInputs:
    samples = filtered_samples(24)
    mined = mine_hard_negatives(samples, None, embedder, MiningConfig(k=4, min_negatives=0)).table
    train = build_training_set(mined, TrainingSetConfig()).table
    return SharedInputs(train, mined, samples, ("offline-rules@v1",))


def test_shared_table_is_used_as_is(inputs: SharedInputs) -> None:
    data = variant_data(GRID.variant("baseline"), inputs)
    assert data.recomputed == [] and data.data_hash == table_hash(inputs.training_set)
    pd.testing.assert_frame_equal(data.table, inputs.training_set.reset_index(drop=True))


def test_dropping_negatives_only_changes_the_lists(inputs: SharedInputs) -> None:
    data = variant_data(GRID.variant("no_hard_negatives"), inputs)
    assert data.recomputed == ["negatives dropped"] and data.data_hash != table_hash(inputs.training_set)
    assert all(len(v) == 0 for v in data.table["neg_ids"]) and list(data.table["id"]) == list(inputs.training_set["id"])
    assert any(len(v) for v in inputs.training_set["neg_ids"])  # the shared table is untouched


def test_mix_and_mining_overrides_recompute_in_process(inputs: SharedInputs, embedder: OfflineEmbedder) -> None:
    mix = variant_data(GRID.variant("small_mix"), inputs)
    assert mix.recomputed == ["training_set"] and len(mix.table) == 10
    mined = variant_data(GRID.variant("negatives_k2"), inputs, lambda: embedder)
    assert mined.recomputed == ["hard_negatives", "training_set"]
    assert max(len(v) for v in mined.table["neg_ids"]) == 2
    with pytest.raises(InvalidInputError, match="mining overrides need filtered_samples and an embedder"):
        variant_data(GRID.variant("negatives_k2"), inputs)


def test_query_source_must_match_the_materialized_generator(inputs: SharedInputs) -> None:
    assert variant_data(GRID.variant("data_rules"), inputs, where="v data_rules").recomputed == []
    with pytest.raises(InvalidInputError, match=r"v data_llm: data.queries='llm' but the materialized "
                                                r"generated_queries were written by \['offline-rules@v1'\]"):
        variant_data(GRID.variant("data_llm"), inputs, where="v data_llm")
    none = SharedInputs(inputs.training_set, inputs.hard_negatives, inputs.filtered_samples, ())
    with pytest.raises(InvalidInputError, match="needs the generated_queries table"):
        variant_data(GRID.variant("data_rules"), none)


def test_keys_follow_config_data_and_seed() -> None:
    backend = Backend("adapter")
    base, _ = model_key(GRID.variant("baseline"), backend, "data1", 0, "w")
    assert base == model_key(GRID.variant("baseline"), backend, "data1", 0, "w")[0]
    assert base != model_key(GRID.variant("baseline"), backend, "data1", 1, "w")[0]
    assert base != model_key(GRID.variant("baseline"), backend, "data2", 0, "w")[0]
    # a variant that changes only the data (not the training) shares the key when its data is the same
    assert base == model_key(GRID.variant("no_hard_negatives"), backend, "data1", 0, "w")[0]
    with pytest.raises(InvalidInputError, match="w: gme-lora always pools the last token"):
        model_key(GRID.variant("lora_mean"), backend, "data1", 0, "w")


def test_switches_are_refused_for_other_bases() -> None:
    grid = parse_grid({"schema_version": 1, "variants": {"baseline": {"model": {"pooling": "last"}}}},
                      Path("g.yaml"))
    with pytest.raises(InvalidInputError, match="switches of the offline default embedder, not of 'clip-tiny'"):
        model_key(grid.variant("baseline"), Backend("adapter", base_model="clip-tiny"), "d", 0, "w")
