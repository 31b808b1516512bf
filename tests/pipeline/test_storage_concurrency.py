"""Finding 14.2: two runs writing one partition at once must neither fail nor expose a broken shard.

Two writer processes materialize the same partition of a real Dagster asset through the Parquet IO
manager, starting each write at the same moment (one-second slots), while this process keeps reading
the live shard. Every write must succeed and
every read must be one writer's complete table. A second test races two real ``raw_corpus`` runs of
one inbox shard (different row limits) and checks that lineage and the shard come from one run.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.support.processes import log_tail, stop_group

ROOT = Path(__file__).parents[2]
ROWS = 2_000_000
WRITER = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    import dagster as dg
    import numpy as np
    import pandas as pd
    from dagster_project.io_manager import ParquetIOManager

    storage, name, work, seconds, rows = sys.argv[1], sys.argv[2], Path(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
    parts = dg.StaticPartitionsDefinition(["p"])
    state = {"i": 0}

    @dg.asset(partitions_def=parts)
    def big() -> pd.DataFrame:
        state["i"] += 1
        rng = np.random.default_rng(state["i"])
        return pd.DataFrame({"writer": name, "write": state["i"], "x": rng.random(rows)})

    io = ParquetIOManager(base_url=storage)
    (work / f"{name}.ready").touch()
    while not (work / "go").exists() or not (work / "go").read_text():
        time.sleep(0.01)
    go, period = float((work / "go").read_text()), 1.0
    ok, failed, errors = 0, 0, []
    for slot in (go + i * period for i in range(int(seconds / period))):
        if time.time() > slot + period / 2:
            continue  # the previous write overran this slot
        time.sleep(max(0.0, slot - time.time()))  # both writers start each write at the same moment
        try:
            res = dg.materialize([big], partition_key="p", resources={"io_manager": io}, raise_on_error=False)
        except Exception as exc:  # the IO manager's own failure, reported below
            res, errors = None, errors + [repr(exc)]
        if res is not None and res.success:
            ok += 1
        else:
            failed += 1
            if res is not None:
                errors += [str(e.event_specific_data.error.message)[:300] for e in res.all_events
                           if e.event_type_value == "STEP_FAILURE"]
    (work / f"{name}.json").write_text(json.dumps({"ok": ok, "failed": failed, "errors": errors[:5]}))
""")


def _start_writer(name: str, storage: Path, work: Path, seconds: float) -> subprocess.Popen:
    log = open(work / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
    return subprocess.Popen([sys.executable, "-c", WRITER, str(storage), name, str(work), str(seconds), str(ROWS)],
                            cwd=ROOT, env={**os.environ, "GME_DATA_HOME": str(work / "var")},
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _read_live(path: Path, rows: int = ROWS) -> str:
    """'missing', 'ok', or why the live shard is not one writer's complete table."""
    try:
        table = pq.read_table(path)
    except FileNotFoundError:
        return "missing"
    except (pa.ArrowInvalid, OSError) as exc:
        return f"invalid parquet: {exc}"
    frame = table.select(["writer", "write"]).to_pandas()
    if len(frame) != rows:
        return f"{len(frame)} rows, expected {rows}"
    if frame.drop_duplicates().shape[0] != 1:
        return "rows of several writes mixed"
    return "ok"


def test_two_writers_and_a_reader_hammering_one_partition(tmp_path: Path) -> None:
    storage, work = tmp_path / "storage", tmp_path / "work"
    work.mkdir()
    seconds = 6.0
    writers = [_start_writer(name, storage, work, seconds) for name in ("a", "b")]
    try:
        deadline = time.monotonic() + 120
        while not all((work / f"{n}.ready").exists() for n in ("a", "b")):
            assert time.monotonic() < deadline and all(w.poll() is None for w in writers), \
                log_tail(work / "a.log") + log_tail(work / "b.log")
            time.sleep(0.05)
        (work / "go.tmp").write_text(str(time.time() + 0.5))
        (work / "go.tmp").rename(work / "go")
        live = storage / "big" / "p.parquet"
        reads: dict[str, int] = {}
        while any(w.poll() is None for w in writers) and time.monotonic() < deadline + 60:
            verdict = _read_live(live)
            if verdict == "missing" and reads.get("ok"):
                verdict = "missing after a complete write"
            elif verdict == "missing":
                time.sleep(0.005)  # nothing written yet
            reads[verdict] = reads.get(verdict, 0) + 1
        for w in writers:
            w.wait(timeout=60)
    finally:
        for w in writers:
            stop_group(w)
    results = {n: json.loads((work / f"{n}.json").read_text()) for n in ("a", "b")}
    print(f"writes: {results}; reads of the live shard: {reads}")
    assert all(r["ok"] > 0 for r in results.values()), results
    assert sum(r["failed"] for r in results.values()) == 0, results
    bad = {k: v for k, v in reads.items() if k not in ("ok", "missing")}
    assert reads.get("ok", 0) > 0 and not bad, reads
    assert _read_live(live) == "ok"
    assert not [p.name for p in (storage / "big").iterdir() if p.name != "p.parquet"]  # no temporaries left


ONE_WRITE = textwrap.dedent("""
    import json, sys
    import dagster as dg
    import numpy as np
    import pandas as pd
    from dagster_project.io_manager import ParquetIOManager

    @dg.asset(partitions_def=dg.StaticPartitionsDefinition(["p"]))
    def big() -> pd.DataFrame:
        return pd.DataFrame({"writer": sys.argv[2], "write": 1, "x": np.random.default_rng(1).random(int(sys.argv[3]))})

    res = dg.materialize([big], partition_key="p", raise_on_error=False,
                         resources={"io_manager": ParquetIOManager(base_url=sys.argv[1])})
    print("RESULT", json.dumps({"success": res.success}), flush=True)
""")


def _wake_and_stop(*procs: subprocess.Popen | None) -> None:
    """Resume (SIGCONT) and stop the process group of each started writer, frozen or not."""
    for p in procs:
        if p is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGCONT)
            stop_group(p)


def _freeze_a_mid_write_then_write_b(tmp_path: Path, rows: int) -> bool:
    """Run writer A until its temporary file exists, freeze it, let writer B write, thaw A.
    False when A finished before it could be frozen (the caller tries again)."""
    storage = tmp_path / "storage"

    def start(name: str) -> subprocess.Popen:
        with open(tmp_path / f"{name}.log", "w") as out:
            return subprocess.Popen([sys.executable, "-c", ONE_WRITE, str(storage), name, str(rows)], cwd=ROOT,
                                    env={**os.environ, "GME_DATA_HOME": str(tmp_path / "var")},
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    folder, live = storage / "big", storage / "big" / "p.parquet"
    a, b = start("a"), None
    try:
        deadline = time.monotonic() + 120
        while not (folder.is_dir() and any(e.name.endswith(".tmp") for e in os.scandir(folder))):
            if a.poll() is not None:
                return False
            assert time.monotonic() < deadline, log_tail(tmp_path / "a.log")
        os.killpg(a.pid, signal.SIGSTOP)  # frozen with its temporary file open or not yet renamed
        if live.exists():
            return False
        b = start("b")
        while b.poll() is None and "waiting for the lock" not in log_tail(tmp_path / "b.log"):
            assert time.monotonic() < deadline, log_tail(tmp_path / "b.log")
            time.sleep(0.05)
        os.killpg(a.pid, signal.SIGCONT)
        a.wait(timeout=120)
        b.wait(timeout=120)
        return True
    finally:
        _wake_and_stop(a, b)


def test_writer_frozen_mid_write_neither_fails_nor_breaks_the_other_writers_shard(tmp_path: Path) -> None:
    """Writer A is frozen (SIGSTOP) while its temporary file exists; writer B writes the same partition
    meanwhile. Both writes must succeed and the live shard must be one writer's complete table."""
    rows = 6_000_000  # ~48 MB of Parquet: a write long enough to be caught in the act
    for attempt in range(4):
        work = tmp_path / f"try{attempt}"
        work.mkdir()
        if _freeze_a_mid_write_then_write_b(work, rows):
            break
    else:
        pytest.fail("writer A always finished its write before it could be frozen")
    for name in ("a", "b"):
        log = log_tail(work / f"{name}.log", 200_000)
        assert 'RESULT {"success": true}' in log, log[-3000:]
    live = work / "storage" / "big" / "p.parquet"
    assert _read_live(live, rows) == "ok"
    assert sorted(p.name for p in live.parent.iterdir()) == ["p.parquet"]


def test_run_paused_between_lineage_and_shard_cannot_interleave_with_another(tmp_path: Path) -> None:
    """Run A (all rows of an inbox shard) is frozen (SIGSTOP) right after it committed lineage; run B
    (a row limit) of the same partition starts meanwhile. Whatever order they finish in, lineage's kept
    records and the live shard must come from the same run."""
    home, inbox = tmp_path / "var", tmp_path / "var" / "inbox"
    inbox.mkdir(parents=True)
    rows = [{"title": f"T{i}", "text": f"paragraph number {i} about oak trees"} for i in range(3000)]
    (inbox / "race.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    old = time.time() - 60
    os.utime(inbox / "race.jsonl", (old, old))
    script = textwrap.dedent("""
        import sys
        import dagster as dg
        from dagster_project.definitions import defs
        instance = dg.DagsterInstance.ephemeral()
        instance.add_dynamic_partitions("source_shard", ["race"])
        defs.resolve_job_def("synthesis_job").execute_in_process(
            instance=instance, partition_key="race", asset_selection=[dg.AssetKey("raw_corpus")],
            run_config={"ops": {"raw_corpus": {"config": {"limit": int(sys.argv[1])}}}})
    """)
    env = {**os.environ, "GME_DATA_HOME": str(home), "GME_DATA_STORAGE_URL": str(home / "storage")}
    env.pop("GME_DATA_REPORTS_URL", None)

    def start(limit: int, log: str) -> subprocess.Popen:
        with open(tmp_path / log, "w") as out:
            return subprocess.Popen([sys.executable, "-c", script, str(limit)], cwd=ROOT, env=env,
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    shard = home / "storage" / "raw_corpus" / "race.parquet"
    a = start(0, "a.log")
    b = None
    try:
        deadline = time.monotonic() + 180
        while not list((home / "reports").glob("*/raw_corpus__race.html")):  # written after A's lineage
            assert a.poll() is None and time.monotonic() < deadline, log_tail(tmp_path / "a.log")
            time.sleep(0.002)
        os.killpg(a.pid, signal.SIGSTOP)
        assert not shard.exists(), "run A was frozen too late: its shard is already written"
        b = start(100, "b.log")
        # B either finishes (nothing stops it from interleaving) or waits for A's partition lock
        while b.poll() is None and "waiting for the lock" not in log_tail(tmp_path / "b.log"):
            assert time.monotonic() < deadline, log_tail(tmp_path / "b.log")
            time.sleep(0.05)
        os.killpg(a.pid, signal.SIGCONT)
        assert a.wait(timeout=120) == 0, log_tail(tmp_path / "a.log")
        assert b.wait(timeout=120) == 0, log_tail(tmp_path / "b.log")
    finally:
        _wake_and_stop(a, b)
    from gme_data.lineage import LineageStore

    table = pd.read_parquet(shard)
    store = LineageStore(home / "lineage.duckdb")
    kept = store.query("SELECT record_id FROM records WHERE asset_key = 'raw_corpus' AND partition = 'race' "
                       "AND status = 'kept'")
    assert len(table) in (100, 3000)
    assert sorted(kept["record_id"]) == sorted(table["id"]), f"shard has {len(table)} rows, lineage {len(kept)}"
