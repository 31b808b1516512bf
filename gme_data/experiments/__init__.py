"""Experiment grids: the paper's ablations as variants of the training recipe, trained and scored with
content-addressed caching (see :mod:`gme_data.experiments.grid` and :mod:`gme_data.experiments.runner`)."""

from gme_data.experiments.grid import Grid, Variant, grid_path, load_grid
from gme_data.experiments.overrides import derive_config
from gme_data.experiments.paper import PAPER_ABLATIONS, PaperAblation
from gme_data.experiments.runner import Backend, SharedInputs, VariantRun, run_variant

__all__ = ["Backend", "Grid", "PAPER_ABLATIONS", "PaperAblation", "SharedInputs", "Variant", "VariantRun",
           "derive_config", "grid_path", "load_grid", "run_variant"]
