"""Lineage as per-step Parquet files, for runs whose steps execute on many machines.

Same tables and questions as :class:`gme_data.lineage.LineageStore`, but every stage write is a few
small Parquet files under one fsspec URL (local path, ``s3://``, ``gs://``, ...), so no process ever
needs a lock on a shared DuckDB file::

    <url>/records/<asset>/<partition>/<write_id>.parquet   records of one stage write
    <url>/edges/<asset>/<partition>/<write_id>.parquet     their edges to parents
    <url>/assets/<asset>/<partition>/<write_id>.parquet    one row: the commit marker of the write
    <url>/runs/<run_id>/<event>.parquet                    run started / finished / one step written

Each file is written under a temporary name and renamed into place (a killed writer leaves no
half-written ``.parquet``). The ``assets`` row is written last: readers only see records and edges
whose ``write_id`` matches the newest marker of their (asset, partition), so a write killed half-way
stays invisible and the previous one keeps answering. After committing, the writer deletes the
older versions of its partition, so re-materializing replaces the partition's lineage.

Reading builds DuckDB views ``runs``, ``assets``, ``records`` and ``edges`` over the files (typed
empty views while there are none), so :meth:`trace` and friends answer across machines without a
compaction; :func:`gme_data.lineage_compact.consolidate_into` loads everything into a DuckDB file.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import duckdb
import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from gme_data.errors import LineageError
from gme_data.lineage import ALL_PARTITIONS, LineageQueries, StageOutput, stage_frames, utc_now

_STR = pa.string()
_TS = pa.timestamp("us")

#: The Parquet schema of each table's files (``write_id`` ties records/edges to their commit marker).
SCHEMAS: dict[str, pa.Schema] = {
    "records": pa.schema([("record_id", _STR), ("asset_key", _STR), ("partition", _STR), ("run_id", _STR),
                          ("kind", _STR), ("status", _STR), ("reason", _STR), ("score", pa.float64()),
                          ("payload", _STR), ("created_at", _TS), ("write_id", _STR)]),
    "edges": pa.schema([("child_id", _STR), ("parent_id", _STR), ("asset_key", _STR), ("partition", _STR),
                        ("run_id", _STR), ("stage", _STR), ("decision", _STR), ("reason", _STR),
                        ("score", pa.float64()), ("write_id", _STR)]),
    "assets": pa.schema([("asset_key", _STR), ("partition", _STR), ("run_id", _STR), ("materialized_at", _TS),
                         ("n_records", pa.int32()), ("n_kept", pa.int32()), ("n_dropped", pa.int32()),
                         ("metadata", _STR), ("write_id", _STR)]),
    "runs": pa.schema([("run_id", _STR), ("event", _STR), ("job", _STR), ("started_at", _TS),
                       ("finished_at", _TS), ("status", _STR), ("config", _STR)]),
}

#: The views, in the column order of the DuckDB store's tables. ``{src_<table>}`` is a FROM source.
VIEWS_SQL = """
CREATE OR REPLACE TEMP VIEW {p}assets_all AS SELECT * FROM {src_assets};
CREATE OR REPLACE TEMP VIEW {p}assets_committed AS
    SELECT * FROM {p}assets_all
    QUALIFY row_number() OVER (PARTITION BY asset_key, partition ORDER BY write_id DESC) = 1;
CREATE OR REPLACE TEMP VIEW {p}assets AS
    SELECT asset_key, partition, run_id, materialized_at, n_records, n_kept, n_dropped, metadata::JSON AS metadata
    FROM {p}assets_committed;
CREATE OR REPLACE TEMP VIEW {p}records AS
    SELECT record_id, asset_key, partition, run_id, kind, status, reason, score, payload::JSON AS payload,
           created_at
    FROM {src_records} r SEMI JOIN {p}assets_committed a USING (asset_key, partition, write_id);
CREATE OR REPLACE TEMP VIEW {p}edges AS
    SELECT child_id, parent_id, asset_key, partition, run_id, stage, decision, reason, score
    FROM {src_edges} e SEMI JOIN {p}assets_committed a USING (asset_key, partition, write_id);
CREATE OR REPLACE TEMP VIEW {p}runs AS
    SELECT run_id, any_value(job) AS job, min(started_at) AS started_at, max(finished_at) AS finished_at,
           coalesce(arg_max(status, finished_at) FILTER (WHERE finished_at IS NOT NULL), 'started') AS status,
           coalesce(any_value(config) FILTER (WHERE event = 'start'), '{{}}')::JSON AS config
    FROM {src_runs} GROUP BY run_id;
"""

_GLOBS = {"assets": "assets/*/*/*.parquet", "records": "records/*/*/*.parquet",
          "edges": "edges/*/*/*.parquet", "runs": "runs/*/*.parquet"}
_WRITE_ID = re.compile(r"^(\d{20}-[0-9a-f]{12})\.parquet(\.tmp)?$")
_READ_RETRIES = 5


def new_write_id() -> str:
    """Sortable by time (newest wins when two writes of one partition race), unique by a random tail."""
    return f"{time.time_ns():020d}-{uuid.uuid4().hex[:12]}"


def _segment(name: str) -> str:
    """A path segment for an asset / partition / run key: percent-quoted, never a glob or separator."""
    quoted = quote(name, safe="")
    return quoted if quoted not in ("", ".", "..") else quoted.replace(".", "%2E") or "%00"


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _table_bytes(rows: pd.DataFrame | dict[str, list[Any]], schema: pa.Schema) -> bytes:
    if isinstance(rows, pd.DataFrame):
        table = pa.Table.from_pandas(rows[schema.names], schema=schema, preserve_index=False)
    else:
        table = pa.Table.from_pydict(rows, schema=schema)
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


class ParquetLineageStore(LineageQueries):
    """Lineage under ``url`` (a path or fsspec URL); writers need no lock, readers see committed writes."""

    def __init__(self, url: str, **storage_options: Any):
        self.url = url.rstrip("/") or "/"
        self.fs, root = fsspec.core.url_to_fs(self.url, **storage_options)
        self.root = root.rstrip("/")
        self.local = "file" in (self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,))

    @property
    def path(self) -> str:
        """Where the lineage lives (what the Dagster metadata shows)."""
        return self.url

    # ---- writes ---------------------------------------------------------------------------
    def _put(self, path: str, data: bytes) -> None:
        """Write ``path`` through a temporary name and rename it into place."""
        self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        tmp = path + ".tmp"
        with self.fs.open(tmp, "wb") as f:
            f.write(data)
        self.fs.mv(tmp, path)

    def _part_dir(self, table: str, asset_key: str, partition: str) -> str:
        return f"{self.root}/{table}/{_segment(asset_key)}/{_segment(partition)}"

    def _run_event(self, run_id: str, event: str, job: str | None = None, finished: bool = False,
                   status: str = "started", config: dict | None = None) -> None:
        now = utc_now()
        row = {"run_id": [run_id], "event": [event.split("-", 1)[0]], "job": [job],
               "started_at": [None if finished else now], "finished_at": [now if finished else None],
               "status": [status], "config": [None if config is None else json.dumps(config, default=str)]}
        self._put(f"{self.root}/runs/{_segment(run_id)}/{event}.parquet", _table_bytes(row, SCHEMAS["runs"]))

    def start_run(self, run_id: str, job: str | None = None, config: dict | None = None) -> None:
        self._run_event(run_id, "start", job=job, config=config or {})

    def finish_run(self, run_id: str, status: str) -> None:
        self._run_event(run_id, "finish", finished=True, status=status)

    def write_stage(self, asset_key: str, partition: str | None, run_id: str, output: StageOutput,
                    metadata: dict | None = None) -> dict[str, int]:
        """Replace (asset_key, partition)'s lineage with ``output``: data files first, marker last."""
        part = partition or ALL_PARTITIONS
        now = utc_now()
        write_id = new_write_id()
        recs, edges, counts = stage_frames(asset_key, part, run_id, output, now)
        name = f"{write_id}.parquet"
        self._put(f"{self._part_dir('records', asset_key, part)}/{name}",
                  _table_bytes(recs.assign(write_id=write_id), SCHEMAS["records"]))
        self._put(f"{self._part_dir('edges', asset_key, part)}/{name}",
                  _table_bytes(edges.assign(write_id=write_id), SCHEMAS["edges"]))
        step = hashlib.sha1(f"{asset_key}\0{part}".encode()).hexdigest()[:16]
        self._run_event(run_id, f"step-{step}")
        marker = {"asset_key": [asset_key], "partition": [part], "run_id": [run_id], "materialized_at": [now],
                  "n_records": [counts["n_records"]], "n_kept": [counts["n_kept"]],
                  "n_dropped": [counts["n_dropped"]], "metadata": [json.dumps(metadata or {}, default=str)],
                  "write_id": [write_id]}
        self._put(f"{self._part_dir('assets', asset_key, part)}/{name}", _table_bytes(marker, SCHEMAS["assets"]))
        self._remove_older(asset_key, part, write_id)
        return counts

    def _remove_older(self, asset_key: str, partition: str, write_id: str) -> None:
        """Delete the partition's versions (and stale temporaries) older than ``write_id``; best effort."""
        for table in ("assets", "records", "edges"):
            folder = self._part_dir(table, asset_key, partition)
            try:
                names = [p.rsplit("/", 1)[-1] for p in self.fs.ls(folder, detail=False)]
            except FileNotFoundError:
                continue
            for name in names:
                m = _WRITE_ID.match(name)
                if m and m.group(1) < write_id:
                    try:
                        self.fs.rm(f"{folder}/{name}")
                    except FileNotFoundError:
                        pass

    # ---- reads ----------------------------------------------------------------------------
    def files(self, table: str) -> list[str]:
        """The current Parquet files of ``table``, as paths DuckDB can open."""
        found = sorted(self.fs.glob(f"{self.root}/{_GLOBS[table]}"))
        return found if self.local else [self.fs.unstrip_protocol(p) for p in found]

    def create_views(self, con: duckdb.DuckDBPyConnection, prefix: str = "") -> None:
        """Create temp views ``<prefix>runs/assets/records/edges`` over the files in ``con``."""
        if not self.local:
            con.register_filesystem(self.fs)
        sources: dict[str, str] = {}
        for table in ("assets", "records", "edges", "runs"):  # markers listed first: see module doc
            files = self.files(table)
            if files:
                listing = ", ".join(_sql_str(f) for f in files)
                sources[f"src_{table}"] = f"read_parquet([{listing}], union_by_name = true)"
            else:
                empty = f"{prefix}empty_{table}"
                con.register(empty, SCHEMAS[table].empty_table())
                sources[f"src_{table}"] = empty
        con.execute(VIEWS_SQL.format(p=prefix, **sources))

    @contextmanager
    def connect(self, read_only: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
        """An in-memory DuckDB connection with the lineage views (the files are never written to)."""
        con = duckdb.connect()
        try:
            self.create_views(con)
            yield con
        finally:
            con.close()

    def query(self, sql: str, params: list | None = None) -> pd.DataFrame:
        """Run a read query over the views; retried when a file vanished under a concurrent rewrite."""
        for attempt in range(_READ_RETRIES):
            try:
                with self.connect() as con:
                    return con.execute(sql, params or []).df()
            except (duckdb.Error, FileNotFoundError) as exc:
                if not is_vanished_file(exc) or attempt == _READ_RETRIES - 1:
                    raise LineageError(f"cannot read Parquet lineage under {self.url}: {exc}") from exc
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")


def is_vanished_file(exc: BaseException) -> bool:
    """Did a read fail because a listed file was deleted (by a concurrent rewrite) before it was read?"""
    if isinstance(exc, (FileNotFoundError, duckdb.IOException)):
        return True
    return "No such file" in str(exc) or "FileNotFoundError" in str(exc) or "No files found" in str(exc)


def views_sql(url: str) -> str:
    """Ready-to-paste DuckDB SQL creating the lineage views over ``url`` with globs (for humans)."""
    base = url.rstrip("/")
    sources = {f"src_{t}": f"read_parquet({_sql_str(base + '/' + g)}, union_by_name = true)"
               for t, g in _GLOBS.items()}
    return VIEWS_SQL.format(p="", **sources).replace("CREATE OR REPLACE TEMP VIEW", "CREATE OR REPLACE VIEW")
