"""The base of every stage's configuration: a pydantic model whose fields (type, default, description)
are declared once, in the library, and reused by the Dagster config of the stage's asset.

Construction is by keyword (``MiningConfig(k=4)``), fields are attributes; :func:`with_changes`
derives a changed, re-validated copy. Bad values raise :class:`~gme_data.errors.InvalidInputError`
naming the config and the field.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from gme_data.errors import InvalidInputError

C = TypeVar("C", bound="StageConfig")


class StageConfig(BaseModel):
    """A stage's options: validated on construction, unknown keywords refused."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise InvalidInputError(f"{type(self).__name__}: {_problems(exc)}") from None

    def as_dict(self) -> dict[str, Any]:
        """Every field by name (what reports and run records store)."""
        return self.model_dump()


def _problems(exc: ValidationError) -> str:
    """Each error as ``field: message`` (a whole-config check without its field), pydantic's prefixes dropped."""
    parts = []
    for error in exc.errors():
        message = str(error["msg"])
        for prefix in ("Value error, ", "Assertion failed, "):
            message = message.removeprefix(prefix)
        field = ".".join(map(str, error["loc"]))
        parts.append(f"{field}: {message}" if field else message)
    return "; ".join(parts)


def with_changes(config: C, **changes: Any) -> C:
    """A copy of ``config`` with ``changes`` applied, validated like a new one."""
    return type(config)(**{**config.model_dump(), **changes})
