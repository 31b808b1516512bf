"""The experiment grid: a versioned YAML file of variants, each a set of config overrides.

Layout (``schema_version: 1``)::

    schema_version: 1
    name: gme-ablations
    seeds: [0, 1, 2]              # every variant trains once per seed
    suite: {name: local, datasets: [...]}   # evaluation (gme_data.evaluation); datasets optional
    defaults:                     # sections merged under every variant's own
      train: {epochs: 3, lr: 0.001}
      model: {rank: 8, pooling: last, query_instructions: true}
    variants:
      baseline: {description: "..."}
      no_hard_negatives: {paper: no_hard_negatives, data: {hard_negatives: false}}

Sections of a variant (all optional): ``training_set`` (TrainingSetConfig fields), ``mining``
(MiningConfig fields: negatives are re-mined from ``filtered_samples``), ``train`` (TrainConfig fields,
not ``seed``), ``model`` (``family``, ``rank``, ``per_role``, ``pooling``, ``query_instructions``) and
``data`` (``hard_negatives``: keep the mined negatives; ``queries``: ``any``, ``rules`` or ``llm``, the
generator of the rows kept). Every error names the file and the variant.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gme_data.errors import InvalidInputError
from gme_data.experiments.overrides import config_fields, derive_config
from gme_data.experiments.paper import paper_ablation
from gme_data.mining import MiningConfig
from gme_data.training.dataset import TrainingSetConfig
from gme_data.training.trainer import TrainConfig

SCHEMA_VERSION = 1
#: The grid shipped with gme_data; ``GME_DATA_EXPERIMENT_GRID`` names another file.
DEFAULT_GRID = Path(__file__).with_name("ablations.yaml")
GRID_ENV = "GME_DATA_EXPERIMENT_GRID"
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_]{0,63}$")
SECTIONS = ("training_set", "mining", "train", "model", "data")
VARIANT_KEYS = frozenset({"description", "paper", "requires", *SECTIONS})
TOP_KEYS = frozenset({"schema_version", "name", "seeds", "suite", "defaults", "variants"})
#: Config fields a variant may not set: the grid owns them (seed) or they only change logging.
RESERVED = {"training_set": {"stage"}, "mining": {"stage", "show_progress"},
            "train": {"seed", "show_progress", "checkpoint_every", "keep_checkpoints"}}
MODEL_KEYS = {"family": str, "rank": (int, type(None)), "per_role": bool, "pooling": str,
              "query_instructions": bool}
FAMILIES = ("auto", "adapter", "gme-lora")
POOLINGS = ("mean", "last")
DATA_KEYS = {"hard_negatives": bool, "queries": str}
QUERY_SOURCES = ("any", "rules", "llm")
REQUIREMENTS = ("local-llm", "gpu")


@dataclass(frozen=True)
class Variant:
    """One variant: its effective overrides per section (grid defaults merged under its own)."""

    name: str
    description: str = ""
    paper: str | None = None
    requires: str | None = None
    training_set: dict[str, Any] = field(default_factory=dict)
    mining: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)

    def section(self, name: str) -> dict[str, Any]:
        return dict(getattr(self, name))

    @property
    def keeps_hard_negatives(self) -> bool:
        return bool(self.data.get("hard_negatives", True))

    @property
    def queries(self) -> str:
        return str(self.data.get("queries", "any"))

    def overrides(self) -> dict[str, dict[str, Any]]:
        """The non-empty sections, for reports and cache keys."""
        return {s: self.section(s) for s in SECTIONS if getattr(self, s)}


@dataclass(frozen=True)
class Grid:
    """A validated grid file."""

    path: Path
    name: str
    seeds: tuple[int, ...]
    suite: str
    datasets: tuple[str, ...]
    variants: dict[str, Variant]

    @property
    def variant_names(self) -> list[str]:
        return list(self.variants)

    def variant(self, name: str) -> Variant:
        if name not in self.variants:
            raise InvalidInputError(f"{self.path}: no variant {name!r} (variants: {self.variant_names})")
        return self.variants[name]


def grid_path(path: str | Path | None = None) -> Path:
    """``path``, else ``$GME_DATA_EXPERIMENT_GRID``, else the bundled ``ablations.yaml``."""
    if path:
        return Path(path)
    env = os.environ.get(GRID_ENV, "").strip()
    return Path(env) if env else DEFAULT_GRID


def load_grid(path: str | Path | None = None) -> Grid:
    """Read and validate a grid file; :class:`InvalidInputError` names the file and the variant."""
    p = grid_path(path)
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInputError(f"experiment grid {p}: cannot read ({exc})") from exc
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"experiment grid {p}: invalid YAML ({exc})") from exc
    return parse_grid(raw, p)


def parse_grid(raw: Any, path: Path) -> Grid:
    """Validate the parsed YAML of ``path``."""
    where = f"experiment grid {path}"
    if not isinstance(raw, dict):
        raise InvalidInputError(f"{where}: expected a mapping at the top, got {type(raw).__name__}")
    unknown = sorted(set(raw) - TOP_KEYS)
    if unknown:
        raise InvalidInputError(f"{where}: unknown top-level key(s) {unknown} (allowed: {sorted(TOP_KEYS)})")
    version = raw.get("schema_version")
    if version != SCHEMA_VERSION:
        raise InvalidInputError(f"{where}: schema_version must be {SCHEMA_VERSION}, got {version!r}")
    seeds = raw.get("seeds", [0, 1, 2])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool)
                                                           for s in seeds) or len(set(seeds)) != len(seeds):
        raise InvalidInputError(f"{where}: seeds must be a non-empty list of distinct integers, got {seeds!r}")
    suite = raw.get("suite") or {}
    if not isinstance(suite, dict) or set(suite) - {"name", "datasets"}:
        raise InvalidInputError(f"{where}: suite must be a mapping with 'name' and optional 'datasets', got {suite!r}")
    datasets = suite.get("datasets") or []
    if not isinstance(datasets, list) or not all(isinstance(d, str) for d in datasets):
        raise InvalidInputError(f"{where}: suite.datasets must be a list of dataset slugs, got {datasets!r}")
    defaults = raw.get("defaults") or {}
    _check_sections(defaults, f"{where}: defaults")
    variants_raw = raw.get("variants")
    if not isinstance(variants_raw, dict) or not variants_raw:
        raise InvalidInputError(f"{where}: variants must be a non-empty mapping of name -> overrides")
    if "baseline" not in variants_raw:
        raise InvalidInputError(f"{where}: a variant named 'baseline' is required (deltas are measured to it)")
    variants = {}
    for name, body in variants_raw.items():
        variants[str(name)] = _variant(str(name), body, defaults, where)
    return Grid(path=path, name=str(raw.get("name") or path.stem), seeds=tuple(seeds),
                suite=str(suite.get("name") or "local"), datasets=tuple(datasets), variants=variants)


def _check_sections(body: Any, where: str) -> None:
    if not isinstance(body, dict):
        raise InvalidInputError(f"{where}: expected a mapping, got {type(body).__name__}")
    unknown = sorted(set(body) - set(SECTIONS))
    if unknown:
        raise InvalidInputError(f"{where}: unknown section(s) {unknown} (allowed: {list(SECTIONS)})")
    for section in SECTIONS:
        if section in body and not isinstance(body[section] or {}, dict):
            raise InvalidInputError(f"{where}: {section} must be a mapping of overrides, got {body[section]!r}")


def _variant(name: str, body: Any, defaults: Mapping[str, Any], where: str) -> Variant:
    vwhere = f"{where}: variant {name!r}"
    if not NAME_RE.match(name):
        raise InvalidInputError(f"{vwhere}: names are lower-case letters, digits and '_' (a partition key)")
    body = body or {}
    if not isinstance(body, dict):
        raise InvalidInputError(f"{vwhere}: expected a mapping of overrides, got {type(body).__name__}")
    unknown = sorted(set(body) - VARIANT_KEYS)
    if unknown:
        raise InvalidInputError(f"{vwhere}: unknown key(s) {unknown} (allowed: {sorted(VARIANT_KEYS)})")
    _check_sections({k: v for k, v in body.items() if k in SECTIONS}, vwhere)
    paper_ablation(body.get("paper"), f"{vwhere}: paper")
    requires = body.get("requires")
    if requires is not None and requires not in REQUIREMENTS:
        raise InvalidInputError(f"{vwhere}: requires must be one of {REQUIREMENTS}, got {requires!r}")
    merged = {s: {**(defaults.get(s) or {}), **(body.get(s) or {})} for s in SECTIONS}
    for section in ("training_set", "mining", "train"):
        _check_config_section(section, merged[section], f"{vwhere}: {section}")
    _check_typed(merged["model"], MODEL_KEYS, f"{vwhere}: model")
    if merged["model"].get("family", "auto") not in FAMILIES:
        raise InvalidInputError(f"{vwhere}: model.family must be one of {FAMILIES}, got {merged['model']['family']!r}")
    if merged["model"].get("pooling", "mean") not in POOLINGS:
        raise InvalidInputError(f"{vwhere}: model.pooling must be one of {POOLINGS}, got {merged['model']['pooling']!r}")
    rank = merged["model"].get("rank")
    if rank is not None and not 1 <= rank <= 4096:
        raise InvalidInputError(f"{vwhere}: model.rank must be in 1..4096 (or null: full adapter), got {rank}")
    _check_typed(merged["data"], DATA_KEYS, f"{vwhere}: data")
    if merged["data"].get("queries", "any") not in QUERY_SOURCES:
        raise InvalidInputError(f"{vwhere}: data.queries must be one of {QUERY_SOURCES}, got {merged['data']['queries']!r}")
    if merged["data"].get("queries") == "llm" and requires is None:
        requires = "local-llm"
    return Variant(name=name, description=str(body.get("description") or ""), paper=body.get("paper"),
                   requires=requires, **merged)


def _check_config_section(section: str, overrides: dict[str, Any], where: str) -> None:
    cls = {"training_set": TrainingSetConfig, "mining": MiningConfig, "train": TrainConfig}[section]
    reserved = sorted(set(overrides) & RESERVED[section])
    if reserved:
        raise InvalidInputError(f"{where}: key(s) {reserved} are set by the grid, not by a variant")
    allowed = set(config_fields(cls)) - RESERVED[section]
    unknown = sorted(set(overrides) - allowed)
    if unknown:
        raise InvalidInputError(f"{where}: unknown key(s) {unknown} (allowed: {sorted(allowed)})")
    derive_config(base_config(section), overrides, where)  # the config's own checks (bad values)


def _check_typed(values: dict[str, Any], schema: dict[str, Any], where: str) -> None:
    unknown = sorted(set(values) - set(schema))
    if unknown:
        raise InvalidInputError(f"{where}: unknown key(s) {unknown} (allowed: {sorted(schema)})")
    for key, value in values.items():
        types = schema[key] if isinstance(schema[key], tuple) else (schema[key],)
        if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
            names = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise InvalidInputError(f"{where}: {key} must be {names}, got {value!r}")


def base_config(section: str) -> Any:
    """The library default a section's overrides apply to."""
    if section == "training_set":
        return TrainingSetConfig()
    if section == "mining":
        return MiningConfig(stage="hard_negatives")
    if section == "train":
        return TrainConfig()
    raise InvalidInputError(f"no library config for section {section!r}")
