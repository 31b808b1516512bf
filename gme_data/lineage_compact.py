"""Load Parquet lineage into a regular DuckDB lineage file (offline, idempotent).

Every (asset, partition) committed in the Parquet lineage replaces that partition's rows in the
target file, in one transaction, exactly as :meth:`LineageStore.write_stage` would have; runs are
upserted. Running it again over the same files changes nothing; partitions only the target holds
are left alone. The Parquet files are not modified.
"""

from __future__ import annotations

import time
from pathlib import Path

import duckdb

from gme_data.errors import LineageError
from gme_data.lineage import LineageStore
from gme_data.lineage_parquet import ParquetLineageStore, is_vanished_file

_RETRIES = 5

_SAME_PARTITION = ("EXISTS (SELECT 1 FROM pq_assets a WHERE a.asset_key = {t}.asset_key "
                   "AND a.partition = {t}.partition)")


def consolidate_into(source: ParquetLineageStore | str, duckdb_path: str | Path,
                     lock_timeout_s: float = 300.0) -> dict[str, int]:
    """Copy the committed Parquet lineage under ``source`` into the DuckDB file ``duckdb_path``.

    Returns how many partitions, records, edges and runs were loaded.
    """
    src = source if isinstance(source, ParquetLineageStore) else ParquetLineageStore(source)
    target = LineageStore(duckdb_path, lock_timeout_s=lock_timeout_s)
    for attempt in range(_RETRIES):
        try:
            return _load(src, target)
        except (duckdb.Error, FileNotFoundError) as exc:  # a file rewritten while listed: list again
            if not is_vanished_file(exc) or attempt == _RETRIES - 1:
                raise LineageError(f"cannot compact {src.url} into {target.path}: {exc}") from exc
            time.sleep(0.1 * (attempt + 1))
    raise AssertionError("unreachable")


def _load(src: ParquetLineageStore, target: LineageStore) -> dict[str, int]:
    with target.connect() as con:
        src.create_views(con, prefix="pq_")
        con.execute("BEGIN TRANSACTION")
        try:
            for table in ("records", "edges"):
                con.execute(f"DELETE FROM {table} WHERE " + _SAME_PARTITION.format(t=table))
                con.execute(f"INSERT INTO {table} SELECT * FROM pq_{table}")
            con.execute("INSERT OR REPLACE INTO assets SELECT * FROM pq_assets")
            con.execute("INSERT OR REPLACE INTO runs SELECT * FROM pq_runs")
            counts = {t: con.execute(f"SELECT count(*) FROM pq_{t}").fetchone()[0]
                      for t in ("assets", "records", "edges", "runs")}
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return {"partitions": counts.pop("assets"), **counts}
