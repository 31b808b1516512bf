"""Errors of the generation stage."""

from __future__ import annotations

from gme_data.errors import GmeDataError


class GenerationError(GmeDataError):
    """The LLM endpoint or the response cache cannot be used (bad key, unknown model, unreadable cache)."""
