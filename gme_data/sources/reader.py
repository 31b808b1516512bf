"""``read_source``: one source (one shard) -> the raw table and its lineage."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice

import pandas as pd
from tqdm.auto import tqdm

from gme_data.images import ImageStore
from gme_data.lineage import StageOutput
from gme_data.sources.folders import iter_image_folder
from gme_data.sources.hf import iter_hf
from gme_data.sources.manifests import iter_csv, iter_jsonl, iter_parquet
from gme_data.sources.policy import ReadPolicy
from gme_data.sources.rows import RawProblem, RawRow, RowBuilder
from gme_data.sources.spec import RAW_COLUMNS, SourceSpec
from gme_data.sources.wikipedia import iter_wikipedia

READERS: dict[str, Callable[[SourceSpec], Iterable[RawRow | RawProblem]]] = {
    "jsonl": iter_jsonl,
    "csv": iter_csv,
    "parquet": iter_parquet,
    "image_folder": iter_image_folder,
    "hf": iter_hf,
    "wikipedia": iter_wikipedia,
}


def iter_raw(spec: SourceSpec) -> Iterator[RawRow | RawProblem]:
    """The spec's rows before validation (``limit`` applied)."""
    rows = READERS[spec.kind](spec)
    return islice(rows, spec.limit) if spec.limit is not None else iter(rows)


def read_source(spec: SourceSpec, image_store: ImageStore, show_progress: bool = True,
                policy: ReadPolicy | None = None) -> tuple[pd.DataFrame, StageOutput]:
    """Read, validate and store one source.

    Returns the raw table (columns ``id, title, text, image, source, shard, url``; ``image`` a path in
    ``image_store`` or None) and a StageOutput with every kept row and every dropped one (with its
    reason and a message naming the file, row and field). Raises :class:`~gme_data.errors.SourceError`
    when the source itself cannot be read (missing file, unknown dataset id, missing text column).
    ``policy``: where image / caption paths may lead and the text caps (default: from the environment,
    see :class:`~gme_data.sources.policy.ReadPolicy`).
    """
    builder = RowBuilder(spec, image_store, policy)
    for item in tqdm(iter_raw(spec), desc=f"read {spec.shard_name}", unit="row", disable=not show_progress):
        builder.add(item)
    frame = pd.DataFrame(builder.rows, columns=list(RAW_COLUMNS))
    frame = frame.astype(object).where(frame.notna(), None)
    return frame, builder.lineage


def read_sources(specs: Iterable[SourceSpec], image_store: ImageStore, show_progress: bool = True,
                 policy: ReadPolicy | None = None) -> tuple[pd.DataFrame, StageOutput]:
    """Several sources concatenated (e.g. all shards of the sample corpus)."""
    frames, lineage = [], StageOutput()
    for spec in specs:
        frame, out = read_source(spec, image_store, show_progress=show_progress, policy=policy)
        frames.append(frame)
        lineage.extend(out)
    if not frames:
        return pd.DataFrame(columns=list(RAW_COLUMNS)), lineage
    return pd.concat(frames, ignore_index=True), lineage
