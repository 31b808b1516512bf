"""The one place where a library config gets a changed copy (experiment variants' overrides).

Library configs are :class:`~gme_data.stage_config.StageConfig` models; this module adds what a grid
file needs on top of :func:`~gme_data.stage_config.with_changes`: unknown keys listed with the allowed
ones, and every error prefixed with where in the grid file the override came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from gme_data.errors import InvalidInputError
from gme_data.stage_config import StageConfig, with_changes

C = TypeVar("C", bound=StageConfig)


def config_fields(cls: type[StageConfig]) -> tuple[str, ...]:
    """Field names of a stage config class."""
    return tuple(cls.model_fields)


def config_values(config: StageConfig) -> dict[str, Any]:
    """Every field of ``config`` as a plain mapping."""
    return config.as_dict()


def derive_config(config: C, overrides: Mapping[str, Any], where: str = "config") -> C:
    """A copy of ``config`` with ``overrides`` applied; validated by the config's own constructor.

    An unknown key or a value the constructor refuses raises :class:`InvalidInputError` naming ``where``.
    """
    allowed = config_fields(type(config))
    unknown = sorted(set(overrides) - set(allowed))
    if unknown:
        raise InvalidInputError(f"{where}: unknown key(s) {unknown} for {type(config).__name__} "
                                f"(allowed: {sorted(allowed)})")
    try:
        return with_changes(config, **overrides)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{where}: {exc}") from exc
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{where}: bad value ({exc})") from exc
