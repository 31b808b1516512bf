"""Local manifests: JSONL, CSV and Parquet files with ``id?, title, text, image, url?`` columns.

Image paths are relative to the manifest's folder (absolute paths also work).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gme_data.errors import SourceError
from gme_data.sources.rows import RawProblem, RawRow
from gme_data.sources.spec import SourceSpec


def column_map(spec: SourceSpec) -> dict[str, str]:
    """Canonical field -> source column, for the columns the spec names."""
    pairs = {"text": spec.text_column, "image": spec.image_column, "title": spec.title_column,
             "url": spec.url_column, "id": spec.id_column}
    return {canonical: column for canonical, column in pairs.items() if column}


def map_fields(record: Mapping[str, Any], mapping: Mapping[str, str]) -> dict[str, Any]:
    """Pick and rename the mapped columns; absent columns stay absent (so they can be reported)."""
    out = {}
    for canonical, column in mapping.items():
        if column in record:
            out[canonical] = _plain(record[column])
    return out


def _plain(value: Any) -> Any:
    """numpy scalars -> Python; NaN -> None; arrays -> lists (so type checks see what was stored)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def require_file(path: Path, what: str) -> Path:
    if not path.exists():
        raise SourceError(f"{what} not found: {path}")
    if not path.is_file():
        raise SourceError(f"{what} is not a file: {path}")
    return path


def iter_jsonl(spec: SourceSpec) -> Iterator[RawRow | RawProblem]:
    """One row per non-empty line; a line that is not a JSON object is dropped, not fatal."""
    path = require_file(Path(spec.path), "JSONL manifest")
    mapping = column_map(spec)
    with path.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"{path.name} line {line_no}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                yield RawProblem(where, ["line", line.strip()], "malformed_row", "row", f"invalid JSON ({exc})")
                continue
            except RecursionError:  # e.g. 100,000 nested '[': this line is dropped, the shard goes on
                yield RawProblem(where, ["line", line.strip()], "malformed_row", "row", "JSON nested too deeply")
                continue
            if not isinstance(record, dict):
                yield RawProblem(where, ["line", line.strip()], "wrong_type", "row",
                                 f"expected a JSON object, got {type(record).__name__}")
                continue
            yield RawRow(where, map_fields(record, mapping), base=path.parent, extra={"file": str(path)})


def _check_columns(path: Path, columns: list[str], spec: SourceSpec) -> None:
    if spec.text_required and spec.text_column not in columns:
        raise SourceError(f"manifest {path}: required column {spec.text_column!r} is missing "
                          f"(columns: {', '.join(map(str, columns))})")


def _iter_frame(path: Path, frame: pd.DataFrame, spec: SourceSpec, first_row: int) -> Iterator[RawRow]:
    _check_columns(path, list(frame.columns), spec)
    mapping = column_map(spec)
    for offset, record in enumerate(frame.to_dict(orient="records")):
        yield RawRow(f"{path.name} row {first_row + offset}", map_fields(record, mapping), base=path.parent,
                     extra={"file": str(path)})


def iter_csv(spec: SourceSpec) -> Iterator[RawRow]:
    """CSV rows (header = row 1, so data rows are numbered from 2, as a spreadsheet shows them)."""
    path = require_file(Path(spec.path), "CSV manifest")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise SourceError(f"CSV manifest {path}: cannot parse ({exc})") from exc
    yield from _iter_frame(path, frame, spec, first_row=2)


def iter_parquet(spec: SourceSpec) -> Iterator[RawRow]:
    """Parquet rows (numbered from 0); a text column of another type shows up as ``wrong_type`` drops."""
    path = require_file(Path(spec.path), "Parquet manifest")
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types; re-raised with the file name
        raise SourceError(f"Parquet manifest {path}: cannot read ({exc})") from exc
    yield from _iter_frame(path, frame, spec, first_row=0)
