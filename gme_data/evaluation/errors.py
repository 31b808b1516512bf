"""Named errors of the evaluation harness (all subclasses of :mod:`gme_data.errors`)."""

from __future__ import annotations

from pathlib import Path

from gme_data.errors import InvalidInputError, SourceError


class DatasetFileMissingError(SourceError, FileNotFoundError):
    """A file the dataset layout requires is absent; the message names the file and the dataset."""

    def __init__(self, path: str | Path, dataset: str, hint: str = ""):
        self.path = Path(path)
        self.dataset = dataset
        msg = f"dataset {dataset!r}: required file not found: {self.path}"
        super().__init__(msg + (f" ({hint})" if hint else ""))


class BadRowError(InvalidInputError):
    """A row of a dataset file cannot be used; ``path`` and 1-based ``line`` say where."""

    def __init__(self, path: str | Path, line: int, reason: str):
        self.path = Path(path)
        self.line = line
        self.reason = reason
        super().__init__(f"{self.path}: bad row {line}: {reason}")


class UnknownIdError(InvalidInputError):
    """``qrels`` reference query or corpus ids that the dataset does not define."""

    def __init__(self, path: str | Path, kind: str, ids: list[str], line: int | None = None):
        self.path = Path(path)
        self.kind = kind
        self.ids = list(ids)
        shown = ", ".join(repr(i) for i in self.ids[:5]) + (" ..." if len(self.ids) > 5 else "")
        where = f" (first at row {line})" if line is not None else ""
        super().__init__(f"{self.path}: qrels reference {len(self.ids)} unknown {kind} id(s){where}: {shown}")


class DatasetUnavailableError(SourceError):
    """A dataset is neither available locally nor downloadable (offline, missing, or hub failure)."""

    def __init__(self, dataset: str, source: str, local_path: str | Path | None, reason: str):
        self.dataset = dataset
        self.source = source
        self.local_path = Path(local_path) if local_path is not None else None
        where = (f"; put it in the local layout (queries.jsonl, corpus.jsonl, qrels.tsv), or a copy of its hub "
                 f"repository where the registry names one, at {self.local_path}" if local_path is not None else "")
        super().__init__(f"dataset {dataset!r} is unavailable from {source}: {reason}{where}")


class UnknownDatasetError(InvalidInputError):
    """A dataset slug, task, category or preset that the registry does not know."""
