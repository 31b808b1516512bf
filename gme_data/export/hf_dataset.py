"""A training table as a Hugging Face ``datasets`` dataset with the images embedded.

Image path columns (``query_image``, ``pos_image``) become ``datasets.Image`` features and
``neg_images`` a list of them: each cell holds the image's bytes (and its file name, never the
local path), so the dataset works on any machine. One split per value of the table's ``split``
column (``train``/``validation``; one ``train`` split when the table has none, e.g. a domain slice).

The export folder is what the hub serves::

    <out>/README.md                          the data card (gme_data.export.data_card)
    <out>/data/<split>-00000-of-00001.parquet load_dataset("parquet", data_dir=<out>/data) or the hub
    <out>/hf_disk/                            datasets.load_from_disk(<out>/hf_disk)
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pandas as pd
import pyarrow as pa

from gme_data.errors import ExportError
from gme_data.export.folders import swap_into_place
from gme_data.tables import value_or_none

#: Columns holding one image path per row, and one list of image paths per row.
IMAGE_COLUMNS: tuple[str, ...] = ("query_image", "pos_image", "image")
IMAGE_LIST_COLUMNS: tuple[str, ...] = ("neg_images",)
SPLIT_ORDER: tuple[str, ...] = ("train", "validation", "test")
DISK_DIR = "hf_disk"
DATA_DIR = "data"


@dataclass
class HFExport:
    """Where an export went: the folder, its ``save_to_disk`` copy, Parquet files and row counts."""

    path: Path
    disk_path: Path
    parquet: dict[str, Path]
    rows: dict[str, int]
    images: int
    columns: list[str] = field(default_factory=list)

    def as_metadata(self) -> dict[str, Any]:
        return {"path": str(self.path), "disk_path": str(self.disk_path),
                "parquet": {s: str(p) for s, p in self.parquet.items()}, "rows": self.rows,
                "images": self.images, "columns": self.columns}


def parquet_file_name(split: str) -> str:
    """The hub's file name for a one-shard split."""
    return f"{split}-00000-of-00001.parquet"


def _as_list(value: Any) -> list[Any]:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, (list, tuple, np.ndarray, pd.Series)):
        return [_plain_value(v) for v in list(value)]
    raise ExportError(f"expected a list, got {type(value).__name__}: {value!r}")


class _ImageReader:
    """Reads image files once each (negatives repeat across rows) and counts them."""

    def __init__(self) -> None:
        self._cache: dict[str, bytes] = {}

    def cell(self, path: Any, row_id: Any, column: str) -> dict[str, Any] | None:
        p = value_or_none(path)
        if p is None:
            return None
        key = str(p)
        if key not in self._cache:
            try:
                self._cache[key] = Path(key).read_bytes()
            except OSError as exc:
                raise ExportError(f"export: row {row_id!r} column {column!r}: cannot read image {key} "
                                  f"({exc.strerror or exc})") from exc
        return {"bytes": self._cache[key], "path": Path(key).name}

    @property
    def count(self) -> int:
        return len(self._cache)


def _plain_columns(table: pd.DataFrame) -> list[str]:
    return [c for c in table.columns if not str(c).startswith("_") and c != "split"
            and c not in IMAGE_COLUMNS and c not in IMAGE_LIST_COLUMNS]


def _plain_value(value: Any) -> Any:
    """A cell as a plain Python value: arrays to lists, NaN/NA/NaT to None, numpy scalars unwrapped."""
    if isinstance(value, (np.ndarray, list, tuple)):
        return [_plain_value(v) for v in value]
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def _features(table: pd.DataFrame, plain: list[str]) -> datasets.Features:
    rows = {c: [_plain_value(v) for v in table[c]] for c in plain}
    schema = pa.Table.from_pydict(rows).schema if plain else pa.schema([])
    feats = datasets.Features.from_arrow_schema(schema)
    ordered = datasets.Features()
    for c in table.columns:  # the table's column order
        if c in IMAGE_COLUMNS:
            ordered[c] = datasets.Image()
        elif c in IMAGE_LIST_COLUMNS:
            ordered[c] = datasets.List(datasets.Image())
        elif c in feats:
            ordered[c] = feats[c]
    return ordered


def _split_names(table: pd.DataFrame) -> list[str]:
    if "split" not in table.columns:
        return ["train"]
    present = [s for s in table["split"].dropna().unique().tolist()]
    unknown = sorted(set(present) - set(SPLIT_ORDER))
    if unknown:
        raise ExportError(f"export: unknown split name(s) {unknown} in the table's 'split' column")
    return [s for s in SPLIT_ORDER if s in present]


def to_dataset_dict(table: pd.DataFrame) -> tuple[datasets.DatasetDict, int]:
    """``table`` as a ``DatasetDict`` (images embedded) and the number of distinct image files."""
    if "id" not in table.columns:
        raise ExportError("export: the table has no 'id' column")
    if table["id"].duplicated().any():
        raise ExportError(f"export: duplicate id {table.loc[table['id'].duplicated(), 'id'].iloc[0]!r}")
    plain = _plain_columns(table)
    feats = _features(table, plain)
    reader = _ImageReader()
    out = datasets.DatasetDict()
    for split in _split_names(table):
        view = table if "split" not in table.columns else table[table["split"] == split]
        data: dict[str, list[Any]] = {c: [_plain_value(v) for v in view[c]] for c in plain}
        for c in (c for c in view.columns if c in IMAGE_COLUMNS):
            data[c] = [reader.cell(p, rid, c) for p, rid in zip(view[c], view["id"], strict=True)]
        for c in (c for c in view.columns if c in IMAGE_LIST_COLUMNS):
            data[c] = [[reader.cell(p, rid, c) for p in _as_list(v)] for v, rid in zip(view[c], view["id"], strict=True)]
        out[split] = datasets.Dataset.from_dict({c: data[c] for c in feats}, features=feats)
    return out, reader.count


def export_hf_dataset(table: pd.DataFrame, out_dir: str | Path) -> HFExport:
    """Write ``table`` as ``save_to_disk`` and hub-layout Parquet under ``out_dir`` (replaced whole:
    written beside it first, so a failure leaves the previous export as it was)."""
    out = Path(out_dir)
    dd, n_images = to_dataset_dict(table)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        dd.save_to_disk(str(tmp / DISK_DIR))
        for split, ds in dd.items():
            (tmp / DATA_DIR).mkdir(parents=True, exist_ok=True)
            ds.to_parquet(str(tmp / DATA_DIR / parquet_file_name(split)))
        swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return HFExport(path=out, disk_path=out / DISK_DIR,
                    parquet={s: out / DATA_DIR / parquet_file_name(s) for s in dd},
                    rows={s: len(ds) for s, ds in dd.items()}, images=n_images,
                    columns=list(next(iter(dd.values())).features) if len(dd) else [])


def hub_configs(splits: Iterable[str]) -> list[dict[str, Any]]:
    """The card's ``configs`` entry: one data file pattern per split."""
    return [{"config_name": "default",
             "data_files": [{"split": s, "path": f"{DATA_DIR}/{s}-*.parquet"} for s in splits]}]
