"""The grid YAML: the bundled file loads; every kind of mistake is refused naming the file and the variant."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
import yaml

from gme_data.errors import InvalidInputError
from gme_data.experiments import derive_config, load_grid
from gme_data.experiments.grid import DEFAULT_GRID, GRID_ENV, grid_path
from gme_data.training import TrainConfig

GOOD = {"schema_version": 1, "seeds": [0, 1, 2], "suite": {"name": "local"},
        "defaults": {"train": {"epochs": 1}, "model": {"rank": 8}},
        "variants": {"baseline": {}, "no_hard_negatives": {"data": {"hard_negatives": False}}}}


def _write(tmp_path: Path, doc: dict, variant: str | None = None, body: dict | None = None) -> Path:
    doc = yaml.safe_load(yaml.safe_dump(doc))  # a deep copy
    if variant is not None:
        doc["variants"][variant] = body
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_bundled_grid_covers_the_paper_ablations() -> None:
    grid = load_grid(DEFAULT_GRID)
    assert len(grid.seeds) >= 3
    assert {"baseline", "no_hard_negatives", "no_instructions", "mean_pooling", "adapter_r4", "adapter_r16",
            "adapter_r32", "single_type_t2t", "data_rules", "data_llm"} <= set(grid.variant_names)
    base, mean = grid.variant("baseline"), grid.variant("mean_pooling")
    assert base.model["pooling"] == "last" and mean.model["pooling"] == "mean"
    assert mean.model["rank"] == base.model["rank"] == 8  # defaults merged under each variant
    assert grid.variant("data_llm").requires == "local-llm"
    assert grid.variant("no_hard_negatives").paper == "no_hard_negatives"


def test_grid_path_prefers_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, GOOD)
    monkeypatch.setenv(GRID_ENV, str(path))
    assert grid_path() == path and load_grid().variant_names == ["baseline", "no_hard_negatives"]


@pytest.mark.parametrize(("body", "message"), [
    ({"train": {"lrr": 0.1}}, "variant 'bad': train: unknown key(s) ['lrr']"),
    ({"train": {"lr": -1.0}}, "variant 'bad': train: TrainConfig: train config: lr and temperature must be > 0"),
    ({"train": {"seed": 3}}, "variant 'bad': train: key(s) ['seed'] are set by the grid"),
    ({"train": {"epochs": "three"}}, "variant 'bad': train:"),
    ({"training_set": {"ratios": {"X->Y": 1}}}, "variant 'bad': training_set: TrainingSetConfig: training set config: unknown "
                                                 "combination 'X->Y'"),
    ({"mining": {"k": 0}}, "variant 'bad': mining: MiningConfig: mining config: k must be >= 1"),
    ({"model": {"pooling": "max"}}, "variant 'bad': model.pooling must be one of"),
    ({"model": {"rank": "big"}}, "variant 'bad': model: rank must be int or null"),
    ({"model": {"query_instructions": "yes"}}, "variant 'bad': model: query_instructions must be bool"),
    ({"model": {"colour": 1}}, "variant 'bad': model: unknown key(s) ['colour']"),
    ({"data": {"queries": "humans"}}, "variant 'bad': data.queries must be one of"),
    ({"trian": {"lr": 1}}, "variant 'bad': unknown key(s) ['trian']"),
    ({"paper": "no_gpus"}, "variant 'bad': paper: unknown paper ablation 'no_gpus'"),
    ({"requires": "quantum"}, "variant 'bad': requires must be one of"),
    ({"train": [1, 2]}, "variant 'bad': train must be a mapping"),
])
def test_bad_variant_is_refused_naming_file_and_variant(tmp_path: Path, body: dict, message: str) -> None:
    path = _write(tmp_path, GOOD, "bad", body)
    with pytest.raises(InvalidInputError) as err:
        load_grid(path)
    assert str(path) in str(err.value)
    assert message in str(err.value)


@pytest.mark.parametrize(("change", "message"), [
    ({"schema_version": 2}, "schema_version must be 1"),
    ({"seeds": []}, "seeds must be a non-empty list"),
    ({"seeds": [0, 0]}, "seeds must be a non-empty list of distinct integers"),
    ({"extra": 1}, "unknown top-level key(s) ['extra']"),
    ({"variants": {"no_hard_negatives": {}}}, "a variant named 'baseline' is required"),
    ({"variants": {"baseline": {}, "Bad-Name": {}}}, "variant 'Bad-Name': names are lower-case"),
    ({"defaults": {"train": {"nope": 1}}}, "variant 'baseline': train: unknown key(s) ['nope']"),
    ({"suite": {"name": "local", "datasets": "all"}}, "suite.datasets must be a list"),
])
def test_bad_grid_is_refused_naming_the_file(tmp_path: Path, change: dict, message: str) -> None:
    path = _write(tmp_path, {**GOOD, **change})
    with pytest.raises(InvalidInputError) as err:
        load_grid(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_unreadable_and_invalid_yaml(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="cannot read"):
        load_grid(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("variants: [unclosed\n")
    with pytest.raises(InvalidInputError, match=f"experiment grid {broken}: invalid YAML"):
        load_grid(broken)


def test_derive_config_is_the_one_way_to_change_a_config() -> None:
    base = TrainConfig(epochs=2)
    changed = derive_config(base, {"lr": 0.5}, "here")
    assert (changed.epochs, changed.lr, base.lr) == (2, 0.5, TrainConfig().lr)
    with pytest.raises(InvalidInputError, match=r"here: unknown key\(s\) \['lrr'\] for TrainConfig"):
        derive_config(base, {"lrr": 1}, "here")
    with pytest.raises(InvalidInputError, match="here: TrainConfig: train config: epochs and batch_size must be >= 1"):
        derive_config(base, {"epochs": 0}, "here")


def test_code_location_has_one_partition_per_bundled_variant() -> None:
    from dagster_project.definitions import defs

    variants = load_grid(DEFAULT_GRID).variant_names
    job = defs.resolve_job_def("experiment_grid_job")
    assert job.partitions_def.get_partition_keys() == variants
    graph = defs.resolve_asset_graph()
    report = graph.get(dg.AssetKey("ablation_report"))
    assert report.partitions_def is None and dg.AssetKey("experiment_grid") in report.parent_keys
    assert defs.resolve_job_def("ablation_report_job") is not None
