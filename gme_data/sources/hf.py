"""Hugging Face ``datasets``: a ``save_to_disk`` folder or a hub id (optionally streamed).

The image column may hold PIL images (the ``Image`` feature), encoded bytes, ``{"bytes", "path"}``
dicts (``Image(decode=False)``) or file paths (relative to the saved dataset's folder).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from gme_data.errors import SourceError
from gme_data.sources.manifests import column_map, map_fields
from gme_data.sources.rows import RawRow
from gme_data.sources.spec import SourceSpec


def _pick_split(dataset_dict: Any, spec: SourceSpec) -> Any:
    splits = list(dataset_dict.keys())
    if spec.split is not None:
        if spec.split not in dataset_dict:
            raise SourceError(f"dataset {spec.path}: split {spec.split!r} not found (splits: {', '.join(splits)})")
        return dataset_dict[spec.split]
    if len(splits) == 1:
        return dataset_dict[splits[0]]
    if "train" in dataset_dict:
        return dataset_dict["train"]
    raise SourceError(f"dataset {spec.path}: several splits ({', '.join(splits)}); name one with split=")


def load_hf_dataset(spec: SourceSpec) -> Iterable[dict[str, Any]]:
    """``load_from_disk`` for an existing folder, else ``load_dataset(hub_id, split, streaming)``."""
    import datasets

    local = Path(spec.path)
    if local.exists():
        try:
            loaded = datasets.load_from_disk(str(local))
        except Exception as exc:  # noqa: BLE001 - datasets raises several types; re-raised with the path
            raise SourceError(f"saved dataset {local}: cannot load with load_from_disk ({exc})") from exc
        return _pick_split(loaded, spec) if isinstance(loaded, datasets.DatasetDict) else loaded
    hub_id = str(spec.path)
    split = spec.split or "train"
    try:
        return datasets.load_dataset(hub_id, split=split, streaming=spec.streaming)
    except Exception as exc:  # noqa: BLE001 - offline / missing / gated all surface differently
        raise SourceError(
            f"Hugging Face dataset {hub_id!r} (split {split!r}) cannot be loaded: {type(exc).__name__}: {exc}. "
            "Offline? Save it elsewhere with save_to_disk and point the source's path at that folder."
        ) from exc


def _columns(dataset: Any) -> list[str] | None:
    names = getattr(dataset, "column_names", None)
    return list(names) if names else None


def iter_hf(spec: SourceSpec) -> Iterator[RawRow]:
    """Rows of the dataset with the spec's column mapping applied."""
    dataset = load_hf_dataset(spec)
    columns = _columns(dataset)
    if columns is not None and spec.text_required and spec.text_column not in columns:
        raise SourceError(f"dataset {spec.path}: text column {spec.text_column!r} not found "
                          f"(columns: {', '.join(columns)}); set text_column=")
    mapping = column_map(spec)
    local = Path(spec.path)
    base = local if local.exists() else None
    for index, record in enumerate(dataset):
        yield RawRow(f"{spec.path} row {index}", map_fields(record, mapping), base=base,
                     extra={"dataset": str(spec.path), "row": index})
