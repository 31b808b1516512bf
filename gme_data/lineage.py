"""The DuckDB lineage store: runs, asset materializations, records and their edges.

Every stage writes, in one transaction per (asset, partition): the records it produced or
judged (``status`` kept/dropped with ``reason`` and ``score``) and edges from each record to its
parents (with the stage, the decision and its reason). Re-materializing a partition replaces
its rows; a killed run leaves nothing half-written (the transaction never commits).

This module is the DuckDB-file backend; :mod:`gme_data.lineage_parquet` writes the same tables as
per-step Parquet files for multi-machine runs and answers the same queries (:class:`LineageQueries`).

DuckDB allows one writing process per file; Dagster's multiprocess executor runs steps in
separate processes. Writers therefore hold the file only for the duration of one short
transaction and retry with backoff while another process holds the lock.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from gme_data.errors import LineageError

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR PRIMARY KEY,
    job VARCHAR,
    started_at TIMESTAMP,
    finished_at TIMESTAMP,
    status VARCHAR,
    config JSON
);
CREATE TABLE IF NOT EXISTS assets (
    asset_key VARCHAR,
    partition VARCHAR,
    run_id VARCHAR,
    materialized_at TIMESTAMP,
    n_records INTEGER,
    n_kept INTEGER,
    n_dropped INTEGER,
    metadata JSON,
    PRIMARY KEY (asset_key, partition)
);
CREATE TABLE IF NOT EXISTS records (
    record_id VARCHAR,
    asset_key VARCHAR,
    partition VARCHAR,
    run_id VARCHAR,
    kind VARCHAR,
    status VARCHAR,
    reason VARCHAR,
    score DOUBLE,
    payload JSON,
    created_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS edges (
    child_id VARCHAR,
    parent_id VARCHAR,
    asset_key VARCHAR,
    partition VARCHAR,
    run_id VARCHAR,
    stage VARCHAR,
    decision VARCHAR,
    reason VARCHAR,
    score DOUBLE
);
CREATE INDEX IF NOT EXISTS records_id ON records(record_id);
CREATE INDEX IF NOT EXISTS edges_child ON edges(child_id);
"""

KEPT = "kept"
DROPPED = "dropped"


@dataclass
class RecordRow:
    """One record a stage produced (kept) or judged and rejected (dropped)."""

    record_id: str
    kind: str
    status: str = KEPT
    reason: str | None = None
    score: float | None = None
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass
class Edge:
    """``child_id`` was made from ``parent_id`` by ``stage``; ``decision`` and ``reason`` say how."""

    child_id: str
    parent_id: str
    stage: str
    decision: str = KEPT
    reason: str | None = None
    score: float | None = None


@dataclass
class StageOutput:
    """What a library stage hands back for lineage: the records it judged and their edges."""

    records: list[RecordRow] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)

    def keep(self, record_id: str, kind: str, parents: Iterable[str] = (), stage: str = "",
             reason: str | None = None, score: float | None = None, **payload: Any) -> None:
        self.records.append(RecordRow(record_id, kind, KEPT, reason, score, payload))
        self.edges.extend(Edge(record_id, p, stage, KEPT, reason, score) for p in parents)

    def drop(self, record_id: str, kind: str, reason: str, parents: Iterable[str] = (), stage: str = "",
             score: float | None = None, **payload: Any) -> None:
        self.records.append(RecordRow(record_id, kind, DROPPED, reason, score, payload))
        self.edges.extend(Edge(record_id, p, stage, DROPPED, reason, score) for p in parents)

    def extend(self, other: StageOutput) -> None:
        self.records.extend(other.records)
        self.edges.extend(other.edges)

    def drop_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.records:
            if r.status == DROPPED:
                counts[r.reason or "unspecified"] = counts.get(r.reason or "unspecified", 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


ALL_PARTITIONS = "__all__"


def stage_frames(asset_key: str, partition: str, run_id: str, output: StageOutput,
                 now: datetime) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """The records and edges rows of one stage write (payload as JSON text) and its counts."""
    recs = pd.DataFrame(
        {
            "record_id": pd.Series([r.record_id for r in output.records], dtype=object),
            "asset_key": asset_key,
            "partition": partition,
            "run_id": run_id,
            "kind": pd.Series([r.kind for r in output.records], dtype=object),
            "status": pd.Series([r.status for r in output.records], dtype=object),
            "reason": pd.Series([r.reason for r in output.records], dtype=object),
            "score": pd.array([r.score for r in output.records], dtype="Float64"),
            "payload": pd.Series([json.dumps(r.payload, default=str) for r in output.records], dtype=object),
            "created_at": now,
        }
    )
    edges = pd.DataFrame(
        {
            "child_id": pd.Series([e.child_id for e in output.edges], dtype=object),
            "parent_id": pd.Series([e.parent_id for e in output.edges], dtype=object),
            "asset_key": asset_key,
            "partition": partition,
            "run_id": run_id,
            "stage": pd.Series([e.stage or asset_key for e in output.edges], dtype=object),
            "decision": pd.Series([e.decision for e in output.edges], dtype=object),
            "reason": pd.Series([e.reason for e in output.edges], dtype=object),
            "score": pd.array([e.score for e in output.edges], dtype="Float64"),
        }
    )
    n_kept = sum(r.status == KEPT for r in output.records)
    counts = {"n_records": len(output.records), "n_kept": n_kept, "n_dropped": len(output.records) - n_kept}
    return recs, edges, counts


def utc_now() -> datetime:
    """Now, in UTC, as a naive timestamp (what the lineage tables store)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _is_lock_error(exc: Exception) -> bool:
    msg = str(exc).lower()
    return "lock" in msg or "conflict" in msg or "being used by another process" in msg


class LineageQueries:
    """The questions every lineage backend answers, in SQL over tables runs/assets/records/edges."""

    def query(self, sql: str, params: list | None = None) -> pd.DataFrame:  # pragma: no cover - abstract
        raise NotImplementedError

    def trace(self, record_id: str, max_depth: int = 32) -> pd.DataFrame:
        """Where did this record come from? Every ancestor edge, nearest first.

        Columns: depth, child_id, parent_id, stage, decision, reason, score, run_id, plus the
        parent record's kind/status/payload.
        """
        sql = """
        WITH RECURSIVE walk(depth, child_id, parent_id, stage, decision, reason, score, run_id) AS (
            SELECT 1, child_id, parent_id, stage, decision, reason, score, run_id
            FROM edges WHERE child_id = ?
            UNION
            SELECT w.depth + 1, e.child_id, e.parent_id, e.stage, e.decision, e.reason, e.score, e.run_id
            FROM edges e JOIN walk w ON e.child_id = w.parent_id
            WHERE w.depth < ?
        )
        SELECT w.*, r.kind AS parent_kind, r.status AS parent_status, r.payload AS parent_payload
        FROM walk w
        LEFT JOIN (SELECT DISTINCT ON (record_id) * FROM records ORDER BY record_id, created_at DESC) r
          ON r.record_id = w.parent_id
        ORDER BY w.depth, w.child_id, w.parent_id
        """
        return self.query(sql, [record_id, max_depth])

    def record(self, record_id: str) -> pd.DataFrame:
        return self.query("SELECT * FROM records WHERE record_id = ? ORDER BY created_at", [record_id])

    def drops(self, asset_key: str, partition: str | None = None) -> pd.DataFrame:
        """What did stage ``asset_key`` drop and why? Counts per reason."""
        sql = "SELECT reason, count(*) AS n FROM records WHERE asset_key = ? AND status = 'dropped'"
        params: list[Any] = [asset_key]
        if partition is not None:
            sql += " AND partition = ?"
            params.append(partition)
        return self.query(sql + " GROUP BY reason ORDER BY n DESC, reason", params)

    def dropped(self, asset_key: str, reason: str | None = None, limit: int = 100) -> pd.DataFrame:
        """The dropped records themselves (with their payloads), optionally for one reason."""
        sql = "SELECT * FROM records WHERE asset_key = ? AND status = 'dropped'"
        params: list[Any] = [asset_key]
        if reason is not None:
            sql += " AND reason = ?"
            params.append(reason)
        return self.query(sql + f" ORDER BY record_id LIMIT {int(limit)}", params)


class LineageStore(LineageQueries):
    """A DuckDB file of lineage. Cheap to construct; connections are short-lived."""

    def __init__(self, path: str | Path, lock_timeout_s: float = 120.0):
        self.path = Path(path)
        self.lock_timeout_s = lock_timeout_s
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.connect() as con:
            con.execute(SCHEMA)

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """Open the file, retrying with jittered backoff while another process holds the lock."""
        deadline = time.monotonic() + self.lock_timeout_s
        delay = 0.05
        while True:
            try:
                if read_only and not self.path.exists():
                    raise LineageError(f"lineage store {self.path} does not exist yet")
                con = duckdb.connect(str(self.path), read_only=read_only)
                break
            except duckdb.Error as exc:
                if not _is_lock_error(exc) or time.monotonic() > deadline:
                    raise LineageError(f"cannot open lineage store {self.path}: {exc}") from exc
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 1.0)
        try:
            yield con
        finally:
            con.close()

    # ---- writes -------------------------------------------------------------------------
    def start_run(self, run_id: str, job: str | None = None, config: dict | None = None) -> None:
        with self.connect() as con:
            con.execute(
                "INSERT INTO runs VALUES (?, ?, ?, NULL, 'started', ?) ON CONFLICT (run_id) DO NOTHING",
                [run_id, job, utc_now(), json.dumps(config or {}, default=str)],
            )

    def finish_run(self, run_id: str, status: str) -> None:
        with self.connect() as con:
            con.execute("UPDATE runs SET finished_at = ?, status = ? WHERE run_id = ?", [utc_now(), status, run_id])

    def write_stage(self, asset_key: str, partition: str | None, run_id: str, output: StageOutput,
                    metadata: dict | None = None) -> dict[str, int]:
        """Replace (asset_key, partition)'s records and edges with ``output``, atomically."""
        part = partition or ALL_PARTITIONS
        now = utc_now()
        recs, edges, counts = stage_frames(asset_key, part, run_id, output, now)
        with self.connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute("INSERT INTO runs VALUES (?, NULL, ?, NULL, 'started', '{}') ON CONFLICT DO NOTHING",
                            [run_id, now])
                con.execute("DELETE FROM records WHERE asset_key = ? AND partition = ?", [asset_key, part])
                con.execute("DELETE FROM edges WHERE asset_key = ? AND partition = ?", [asset_key, part])
                con.register("_recs", recs)
                con.register("_edges", edges)
                con.execute("INSERT INTO records SELECT record_id, asset_key, partition, run_id, kind, status, "
                            "reason, score, payload::JSON, created_at FROM _recs")
                con.execute("INSERT INTO edges SELECT * FROM _edges")
                con.execute(
                    "INSERT OR REPLACE INTO assets VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [asset_key, part, run_id, now, counts["n_records"], counts["n_kept"], counts["n_dropped"],
                     json.dumps(metadata or {}, default=str)],
                )
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return counts

    # ---- reads ----------------------------------------------------------------------------
    def query(self, sql: str, params: list | None = None) -> pd.DataFrame:
        """Run a read query (the store is opened read-only)."""
        with self.connect(read_only=True) as con:
            return con.execute(sql, params or []).df()


def trace_sql(record_id: str) -> str:
    """A ready-to-paste DuckDB query explaining ``record_id`` (shown in the Dagster UI)."""
    rid = record_id.replace("'", "''")
    return (
        "WITH RECURSIVE walk AS (SELECT 1 AS depth, * FROM edges WHERE child_id = '" + rid + "' "
        "UNION SELECT w.depth + 1, e.* FROM edges e JOIN walk w ON e.child_id = w.parent_id) "
        "SELECT depth, child_id, parent_id, stage, decision, reason, score FROM walk ORDER BY depth;"
    )
