"""Parquet shards on local disk or object storage (any fsspec URL), one file per asset partition.

DataFrames are written as ``<base>/<asset>/<partition>.parquet`` (``__all__`` when unpartitioned);
dict outputs (e.g. a trained model's manifest) as JSON. Writes go to a temporary name and are
renamed into place, so a killed step never leaves a half-written shard. An unpartitioned asset
reading a partitioned one gets the concatenation of the materialized shards, DuckDB-queryable as
``read_parquet('<base>/<asset>/*.parquet')``.

A table whose quality gate failed is not materialized: ``assets.common.finish_stage`` writes it to
``<base>/<asset>/_quarantine/<partition>.parquet`` (:meth:`ParquetIOManager.quarantine`) and moves
the live shard beside it (``<partition>.superseded.parquet``), so no later run (e.g. an unpartitioned stage reading every shard) consumes data its
gate rejected; the next passing materialization of the partition deletes the quarantined copy, after
its new shard is in place (a failed write leaves every earlier copy where it was).

Partition keys are percent-quoted into file names (:func:`gme_data.storage_names.path_segment`), so a
key like ``../x`` stays inside its asset's folder. Each write goes through a temporary file unique to
the writer, and writers of one partition take turns (:meth:`ParquetIOManager.lock`). ``finish_stage``
stages a passing table's shard (:meth:`ParquetIOManager.stage`) before it commits lineage, so a shard
that cannot be written fails the step while lineage and the live shard still match.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import io
import json
import os
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import dagster as dg
import fsspec
import pandas as pd

from dagster_project.partition_lock import partition_lock
from gme_data import settings
from gme_data.storage_names import path_segment

ALL = "__all__"
QUARANTINE = "_quarantine"

#: Shards written ahead by ``stage`` in this process: (asset, partition, run id) -> (id of the table,
#: temporary file, final path).
_STAGED: dict[tuple[str, str, str], tuple[int, str, str]] = {}


def _is_local(fs: Any) -> bool:
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return "file" in protocols or "local" in protocols


class ParquetIOManager(dg.ConfigurableIOManager):
    """Stores DataFrames as Parquet and dicts as JSON under ``base_url`` (a path or fsspec URL)."""

    base_url: str = ""

    def resolved_url(self) -> str:
        """``base_url``, else ``$GME_DATA_STORAGE_URL``, else ``<GME_DATA_HOME>/storage`` (read at use)."""
        return self.base_url or os.environ.get("GME_DATA_STORAGE_URL") or str(settings.home() / "storage")

    def _fs(self) -> tuple[Any, str]:
        fs, root = fsspec.core.url_to_fs(self.resolved_url())
        return fs, root.rstrip("/")

    def _path(self, asset: str, partition: str | None, ext: str, quarantine: bool = False) -> tuple[Any, str]:
        fs, root = self._fs()
        folder = f"{root}/{asset}/{QUARANTINE}" if quarantine else f"{root}/{asset}"
        return fs, f"{folder}/{path_segment(partition or ALL)}.{ext}"

    def shard_url(self, asset: str) -> str:
        """A glob DuckDB can read: all shards of ``asset``."""
        return f"{self.resolved_url().rstrip('/')}/{asset}/*.parquet"

    @staticmethod
    def _parquet_bytes(df: pd.DataFrame) -> bytes:
        buf = io.BytesIO()
        df.reset_index(drop=True).to_parquet(buf, index=False)
        return buf.getvalue()

    @staticmethod
    def _write_temp(fs: Any, path: str, data: bytes) -> str:
        """Write ``data`` beside ``path`` under a temporary name of this writer's own; return that name."""
        fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        tmp = f"{path}.{os.getpid()}-{uuid.uuid4().hex[:12]}.tmp"
        try:
            with fs.open(tmp, "wb") as f:
                f.write(data)
        except BaseException:
            with contextlib.suppress(OSError):
                fs.rm(tmp)
            raise
        return tmp

    @staticmethod
    def _rename_into_place(fs: Any, tmp: str, path: str) -> None:
        try:
            fs.mv(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                fs.rm(tmp)
            raise

    @staticmethod
    def _remove_stale_temps(fs: Any, path: str, keep: str | None = None) -> None:
        """Delete temporaries of ``path`` left by writers that died (call with the partition's lock held:
        a live writer only has a temporary while it holds the lock). Local storage only."""
        if not _is_local(fs):
            return
        for stale in glob.glob(glob.escape(path) + ".*.tmp"):
            if stale != keep:
                Path(stale).unlink(missing_ok=True)

    def _write_atomic(self, fs: Any, path: str, data: bytes) -> None:
        """Write ``data`` to a temporary name of this writer's own, then rename it over ``path``."""
        self._rename_into_place(fs, self._write_temp(fs, path, data), path)

    def stage(self, asset: str, partition: str | None, run_id: str, df: pd.DataFrame) -> bool:
        """Write ``df``'s shard under a temporary name before the stage commits its lineage, so a table
        that cannot be written fails the step before lineage changes; :meth:`handle_output` then only
        renames it. Call with :meth:`lock` held until the output is handled (``finish_stage`` does).
        Local storage only (elsewhere a rename is a copy); returns whether it staged."""
        fs, path = self._path(asset, partition, "parquet")
        if not _is_local(fs):
            return False
        with self.lock(asset, partition):
            self._remove_stale_temps(fs, path)
            tmp = self._write_temp(fs, path, self._parquet_bytes(df))
        _STAGED[(asset, partition or ALL, run_id)] = (id(df), tmp, path)
        return True

    @staticmethod
    def discard_staged(asset: str, partition: str | None, run_id: str) -> None:
        """Remove a staged shard :meth:`handle_output` did not take (the step stopped before it)."""
        entry = _STAGED.pop((asset, partition or ALL, run_id), None)
        if entry is not None:
            Path(entry[1]).unlink(missing_ok=True)

    def _superseded(self, asset: str, partition: str | None) -> tuple[Any, str]:
        fs, root = self._fs()
        return fs, f"{root}/{asset}/{QUARANTINE}/{path_segment(partition or ALL)}.superseded.parquet"

    def lock(self, asset: str, partition: str | None,
             log: Callable[[str], object] | None = None) -> AbstractContextManager[None]:
        """The lock a writer of ``asset``'s ``partition`` holds (beside local storage, else under
        ``<GME_DATA_HOME>/locks``, which then serializes writers of one machine only)."""
        fs, root = self._fs()
        if _is_local(fs):
            folder = Path(root) / "_locks" / asset
        else:
            url_key = hashlib.sha1(self.resolved_url().encode()).hexdigest()[:16]
            folder = settings.home() / "locks" / url_key / asset
        return partition_lock(folder / f"{path_segment(partition or ALL)}.lock",
                              f"{asset}[{partition or '-'}]", log=log)

    def quarantine(self, asset: str, partition: str | None, df: pd.DataFrame) -> str:
        """Keep a gate-rejected table aside and take the partition's live shard out of reach of loads
        (moved to ``_quarantine/<partition>.superseded.parquet``, not deleted); return the table's path."""
        fs, path = self._path(asset, partition, "parquet", quarantine=True)
        data = self._parquet_bytes(df)
        with self.lock(asset, partition):
            self._remove_stale_temps(fs, path)
            self._write_atomic(fs, path, data)
            fs_live, live = self._path(asset, partition, "parquet")
            if fs_live.exists(live):
                fs_old, old = self._superseded(asset, partition)
                fs_live.mv(live, old)  # older data of a partition whose latest input was rejected
        return path

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        if obj is None:
            return
        asset = context.asset_key.to_user_string().replace("/", "__")
        partition = context.partition_key if context.has_partition_key else None
        staged = None
        if isinstance(obj, pd.DataFrame):
            fs, path = self._path(asset, partition, "parquet")
            staged = _STAGED.pop((asset, partition or ALL, context.run_id), None)
            if staged is not None and (staged[0] != id(obj) or staged[2] != path):
                Path(staged[1]).unlink(missing_ok=True)  # staged for another table or storage: not ours
                staged = None
            data = b"" if staged is not None else self._parquet_bytes(obj)
            ext = "parquet"
        elif isinstance(obj, dict):
            fs, path = self._path(asset, partition, "json")
            data = json.dumps(obj, indent=1, default=str).encode()
            ext = "json"
        else:
            raise TypeError(f"ParquetIOManager stores DataFrames and dicts; {asset} returned {type(obj).__name__}")
        with self.lock(asset, partition, log=context.log.info):
            self._remove_stale_temps(fs, path, keep=staged[1] if staged is not None else None)
            if staged is not None:
                self._rename_into_place(fs, staged[1], path)
            else:
                self._write_atomic(fs, path, data)
            if ext == "parquet":  # this partition passed its gate again: its set-aside copies can go now
                for fs_q, qpath in (self._path(asset, partition, "parquet", quarantine=True),
                                    self._superseded(asset, partition)):
                    if fs_q.exists(qpath):
                        fs_q.rm(qpath)
        context.add_output_metadata({"storage_path": dg.MetadataValue.path(path), "format": ext})

    def load_input(self, context: dg.InputContext) -> Any:
        asset = context.asset_key.to_user_string().replace("/", "__")
        keys: list[str | None] = list(context.asset_partition_keys) if context.has_asset_partitions else [None]
        frames, dicts, missing = [], [], []
        for key in keys:
            fs, path = self._path(asset, key, "parquet")
            if fs.exists(path):
                with fs.open(path, "rb") as f:
                    frames.append(pd.read_parquet(f))
                continue
            fs, jpath = self._path(asset, key, "json")
            if fs.exists(jpath):
                with fs.open(jpath, "rb") as f:
                    dicts.append(json.loads(f.read()))
                continue
            missing.append(key or ALL)
        quarantined = []
        for key in missing:
            fs_q, qpath = self._path(asset, key, "parquet", quarantine=True)
            if fs_q.exists(qpath):
                quarantined.append(key)
        note = f" ({len(quarantined)} quarantined by a failed quality gate: {quarantined})" if quarantined else ""
        if missing and not frames and not dicts:
            raise FileNotFoundError(
                f"asset {asset}: nothing usable for partition(s) {missing} under {self.resolved_url()}{note}; "
                "materialize it first (or fix the data its quality gate rejected)"
            )
        if missing:
            context.log.warning(f"asset {asset}: partitions skipped, not materialized or quarantined: {missing}{note}")
        if dicts and not frames:
            return dicts[0] if len(dicts) == 1 else dicts
        return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
