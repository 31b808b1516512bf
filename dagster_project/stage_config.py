"""Dagster configs generated from the library's stage configs, so each field is declared once.

``stage_config_class("MiningAssetConfig", MiningConfig, fields=("k", ...), extra={...})`` makes a
``dg.Config`` whose fields have the library's types, defaults and descriptions (``defaults``
overrides a default where the asset's differs); ``extra`` adds the asset's own fields (its quality
gate's bounds); ``more`` carries fields of further library configs, under a name prefix
(``Carry(ImageGenConfig, ("model",), prefix="image_gen_")``). :func:`library_config` builds a
library config from a run's values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import dagster as dg
from pydantic import Field, create_model
from pydantic.fields import FieldInfo

from gme_data.stage_config import StageConfig

L = TypeVar("L", bound=StageConfig)

#: On each generated class: library config -> the Carry it was generated with.
CARRIED = "__carried_library_fields__"


@dataclass(frozen=True)
class Carry:
    """``fields`` of ``library`` carried into a Dagster config as ``prefix + name``."""

    library: type[StageConfig]
    fields: tuple[str, ...]
    prefix: str = ""
    defaults: dict[str, Any] = field(default_factory=dict)

    def definitions(self) -> dict[str, Any]:
        unknown = [f for f in [*self.fields, *self.defaults] if f not in self.library.model_fields]
        if unknown:
            raise ValueError(f"{self.library.__name__} has no field(s) {unknown}")
        out: dict[str, Any] = {}
        for f in self.fields:
            info = self.library.model_fields[f]
            default = self.defaults[f] if f in self.defaults else info.get_default(call_default_factory=True)
            out[self.prefix + f] = (info.annotation, Field(default=default, description=info.description))
        return out


def stage_config_class(name: str, library: type[StageConfig], *, module: str, fields: Sequence[str],
                       defaults: dict[str, Any] | None = None,
                       extra: dict[str, tuple[Any, FieldInfo]] | None = None,
                       more: Sequence[Carry] = ()) -> type[dg.Config]:
    """A ``dg.Config`` named ``name`` (defined in ``module``) with ``library``'s ``fields``, the fields
    carried by ``more`` and the asset's own ``extra`` fields."""
    carries = [Carry(library, tuple(fields), defaults=dict(defaults or {})), *more]
    definitions: dict[str, Any] = {}
    for carry in carries:
        definitions.update(carry.definitions())
    definitions.update(extra or {})
    cls = create_model(name, __base__=dg.Config, __module__=module, **definitions)
    setattr(cls, CARRIED, {c.library: c for c in carries})
    return cls


def library_config(config: dg.Config, library: type[L], **fixed: Any) -> L:
    """``library``'s config from the fields ``config`` (a generated class) carries for it; ``fixed``
    sets fields the run does not (or replaces a carried value the asset adjusts)."""
    carry = getattr(type(config), CARRIED, {}).get(library)
    if carry is None:
        raise TypeError(f"{type(config).__name__} carries no fields of {library.__name__}")
    carried = {f: getattr(config, carry.prefix + f) for f in carry.fields}
    return library(**{**carried, **fixed})
