"""Dagster configs generated from the library's stage configs, so each field is declared once.

``stage_config_class("MiningAssetConfig", MiningConfig, fields=("k", ...), extra={...})`` makes a
``dg.Config`` whose fields have the library's types, defaults and descriptions (``defaults``
overrides a default where the asset's differs); ``extra`` adds the asset's own fields (its quality
gate's bounds). :func:`library_config` builds the library config from a run's values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import dagster as dg
from pydantic import Field, create_model
from pydantic.fields import FieldInfo

from gme_data.stage_config import StageConfig

L = TypeVar("L", bound=StageConfig)

#: The library config each generated Dagster config stands for, and the fields it carries over.
LIBRARY = "__library_config__"
CARRIED = "__library_fields__"


def stage_config_class(name: str, library: type[StageConfig], *, module: str, fields: Sequence[str],
                       defaults: dict[str, Any] | None = None,
                       extra: dict[str, tuple[Any, FieldInfo]] | None = None) -> type[dg.Config]:
    """A ``dg.Config`` named ``name`` (defined in ``module``) with ``library``'s ``fields`` plus ``extra``."""
    defaults = defaults or {}
    unknown = [f for f in [*fields, *defaults] if f not in library.model_fields]
    if unknown:
        raise ValueError(f"{library.__name__} has no field(s) {unknown}")
    definitions: dict[str, Any] = {}
    for f in fields:
        info = library.model_fields[f]
        default = defaults[f] if f in defaults else info.get_default(call_default_factory=True)
        definitions[f] = (info.annotation, Field(default=default, description=info.description))
    definitions.update(extra or {})
    cls = create_model(name, __base__=dg.Config, __module__=module, **definitions)
    setattr(cls, LIBRARY, library)
    setattr(cls, CARRIED, tuple(fields))
    return cls


def library_config(config: dg.Config, library: type[L], **fixed: Any) -> L:
    """``library``'s config from the carried-over fields of ``config`` (a generated class); ``fixed``
    sets fields the run does not (or replaces a carried value the asset adjusts)."""
    if getattr(type(config), LIBRARY, None) is not library:
        raise TypeError(f"{type(config).__name__} was not generated from {library.__name__}")
    return library(**{**{f: getattr(config, f) for f in getattr(type(config), CARRIED)}, **fixed})
