"""Named errors: every one says which input was wrong and why."""

from __future__ import annotations


class GmeDataError(Exception):
    """Base class of gme_data's errors."""


class InvalidItemError(GmeDataError, ValueError):
    """An Item (text / image / fused) that cannot be used; the message names the item."""


class InvalidInputError(GmeDataError, ValueError):
    """A user-supplied input (file, row, config value) that is malformed; the message names it."""


class SourceError(GmeDataError):
    """A data source (manifest, folder, dataset id) that cannot be read; the message names it."""


class LineageError(GmeDataError):
    """The lineage store refused a write (e.g. it stayed locked past the retry budget)."""


class ExportError(GmeDataError):
    """An export (Hugging Face dataset, data card, hub push, ms-swift files) could not be written."""
