"""One config schema per stage: library configs are pydantic models, the assets' Dagster configs are
generated from them (fields declared once), and code versions still follow their defaults."""

from __future__ import annotations

import dagster as dg
import pytest

from assets import candidates, filtered_samples, fused_queries, gme_model, hard_negatives, training_set
from dagster_project import versions
from dagster_project.stage_config import CARRIED, library_config
from gme_data.candidates import CandidatesConfig
from gme_data.errors import InvalidInputError
from gme_data.filtering import FilterConfig, FusedConfig
from gme_data.generation import GenerationConfig
from gme_data.generation.entity_images import ImageGenConfig
from gme_data.mining import MiningConfig
from gme_data.pool import PoolConfig
from gme_data.stage_config import StageConfig, with_changes
from gme_data.training import TrainingSetConfig
from gme_data.training.trainer import TrainConfig

GENERATED = [candidates.CandidatesAssetConfig, hard_negatives.MiningAssetConfig, training_set.TrainingSetAssetConfig,
             gme_model.TrainAssetConfig, fused_queries.FusedQueriesConfig, filtered_samples.FilteredSamplesConfig]
#: Where an asset's default deliberately differs from its library's.
ASSET_DEFAULTS = {("MiningAssetConfig", "min_negatives"): 0, ("TrainAssetConfig", "epochs"): 3,
                  ("TrainAssetConfig", "lr"): 1e-3}


@pytest.mark.parametrize("cls", GENERATED, ids=lambda c: c.__name__)
def test_asset_configs_carry_library_fields_unchanged(cls: type[dg.Config]) -> None:
    assert issubclass(cls, dg.Config)
    for library, carry in getattr(cls, CARRIED).items():
        assert carry.fields
        for name in carry.fields:
            mine, theirs = cls.model_fields[carry.prefix + name], library.model_fields[name]
            assert mine.annotation == theirs.annotation and mine.description == theirs.description
            expected = ASSET_DEFAULTS.get((cls.__name__, name), theirs.get_default(call_default_factory=True))
            assert mine.get_default(call_default_factory=True) == expected, (cls.__name__, name)
    # "unset" is None, never a 0 / negative / '' sentinel
    for name, info in cls.model_fields.items():
        if info.default is None:
            assert type(None) in getattr(info.annotation, "__args__", ()), name


def test_library_config_from_a_run_and_what_the_asset_fixes() -> None:
    run = hard_negatives.MiningAssetConfig(k=3, max_score=0.9, min_negatives=5)
    cfg = hard_negatives.mining_config(run, "hard_negatives_stage2")
    assert isinstance(cfg, MiningConfig)
    assert (cfg.k, cfg.max_score, cfg.min_negatives, cfg.stage, cfg.show_progress) == (
        3, 0.9, 3, "hard_negatives_stage2", True)
    gen = library_config(fused_queries.FusedQueriesConfig(image_gen_model="flux", image_gen_threshold=0.3),
                         ImageGenConfig, enabled=True)
    assert (gen.enabled, gen.model, gen.threshold) == (True, "flux", 0.3)
    with pytest.raises(TypeError, match="carries no fields of FilterConfig"):
        library_config(fused_queries.FusedQueriesConfig(), FilterConfig)


@pytest.mark.parametrize("cls", [CandidatesConfig, MiningConfig, TrainingSetConfig, TrainConfig, FusedConfig,
                                 FilterConfig, ImageGenConfig, PoolConfig, GenerationConfig])
def test_library_configs_are_stage_configs_built_by_keyword(cls: type[StageConfig]) -> None:
    cfg = cls()
    assert isinstance(cfg, StageConfig)
    name, value = next((n, v) for n, v in cfg.as_dict().items() if isinstance(v, (int, float)) and
                       not isinstance(v, bool))
    assert getattr(cls(**{name: value}), name) == value
    with pytest.raises(InvalidInputError, match=rf"{cls.__name__}: no_such_field"):
        cls(no_such_field=1)


def test_bad_values_name_the_config_and_changes_are_validated() -> None:
    with pytest.raises(InvalidInputError, match=r"MiningConfig: k: Input should be a valid integer"):
        MiningConfig(k="many")
    with pytest.raises(InvalidInputError, match="mining config: k must be >= 1"):
        MiningConfig(k=0)
    base = MiningConfig(k=4)
    assert with_changes(base, margin=0.1).margin == 0.1 and base.margin == 0.05
    with pytest.raises(InvalidInputError, match="min_negatives must be in"):
        with_changes(base, min_negatives=9)
    with pytest.raises(InvalidInputError, match="threshold must be in"):
        CandidatesConfig(threshold=1.5)


def test_code_versions_follow_the_generated_defaults() -> None:
    defaults = versions.config_defaults(hard_negatives)
    assert defaults["MiningAssetConfig"]["k"] == "8" and defaults["MiningAssetConfig"]["max_score"] == "None"
    assert defaults["MiningAssetConfig"]["min_rows"] == "1"
    assert "TrainAssetConfig" in versions.config_defaults(gme_model)
