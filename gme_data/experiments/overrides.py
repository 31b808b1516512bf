"""The one place where a library config gets a changed copy (experiment variants' overrides).

Configs are constructed with keyword arguments and read by attribute only, so this module is the only
code that knows how a config's fields are listed and copied (dataclasses today; pydantic models work too).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from gme_data.errors import InvalidInputError

C = TypeVar("C")


def config_fields(cls: type) -> tuple[str, ...]:
    """Field names of a config class (a dataclass or a pydantic model)."""
    model_fields = getattr(cls, "model_fields", None)
    if isinstance(model_fields, Mapping):
        return tuple(model_fields)
    params = getattr(cls, "__dataclass_fields__", None)
    if isinstance(params, Mapping):
        return tuple(params)
    raise TypeError(f"{cls.__name__} is neither a dataclass nor a pydantic model")


def config_values(config: Any) -> dict[str, Any]:
    """Every field of ``config`` as a plain mapping (attribute reads only)."""
    return {name: getattr(config, name) for name in config_fields(type(config))}


def derive_config(config: C, overrides: Mapping[str, Any], where: str = "config") -> C:
    """A copy of ``config`` with ``overrides`` applied; validated by the config's own constructor.

    An unknown key or a value the constructor refuses raises :class:`InvalidInputError` naming ``where``.
    """
    cls = type(config)
    allowed = config_fields(cls)
    unknown = sorted(set(overrides) - set(allowed))
    if unknown:
        raise InvalidInputError(f"{where}: unknown key(s) {unknown} for {cls.__name__} (allowed: {sorted(allowed)})")
    try:
        return cls(**{**config_values(config), **dict(overrides)})
    except InvalidInputError as exc:
        raise InvalidInputError(f"{where}: {exc}") from exc
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{where}: bad value ({exc})") from exc
