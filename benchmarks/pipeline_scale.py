"""Scale-out benchmark: synthesis_job in one process vs. distributed by dagster-celery (real Redis, N workers).

Corpora: the bundled sample (1x: sample-wiki_01..03 + sample-dirty) and a generated 10x corpus (the
sample plus 9 perturbed copies of every sample shard, written as new inbox shards). Each
(corpus, executor) cell runs in a fresh GME_DATA_HOME and Dagster instance and reports wall time,
items/s per stage (``dagster/row_count`` of each materialization / summed step time, from the
event log), and peak RSS (sampled every 0.2 s over this process, its children and the workers).

    python benchmarks/pipeline_scale.py --quick            # 1x only, in_process + celery
    python benchmarks/pipeline_scale.py --with-training    # 1x and 10x, then training_eval_job
    python benchmarks/pipeline_scale.py --executors celery --workers 4 --scale 20

Needs redis-server on PATH and dagster-celery/celery/redis installed (see docs/scale-out.md).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import random
import re
import shutil
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import dagster as dg  # noqa: E402
import psutil  # noqa: E402
from dagster._core.instance.ref import InstanceRef  # noqa: E402

STAGES = ["raw_corpus", "candidates", "generated_queries", "fused_queries", "filtered_samples"]
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


@dataclass
class CellResult:
    """One (corpus, executor) measurement."""

    corpus: str
    executor: str
    shards: int
    runs_ok: int
    wall_s: float
    peak_rss_mb: float
    peak_proc_rss_mb: float
    stage_rows: dict[str, int] = field(default_factory=dict)
    stage_step_s: dict[str, float] = field(default_factory=dict)
    failed_steps: list[str] = field(default_factory=list)
    training_s: float | None = None

    def items_per_s(self, stage: str) -> float | None:
        t = self.stage_step_s.get(stage, 0.0)
        return self.stage_rows.get(stage, 0) / t if t > 0 else None


class RssSampler:
    """Samples the summed RSS of this process tree plus ``extra_pids`` (and their children)."""

    def __init__(self, extra_pids: Callable[[], set[int]] | None = None, every_s: float = 0.2) -> None:
        self.extra_pids = extra_pids
        self.every_s = every_s
        self.peak_total = 0
        self.peak_proc = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _pids(self) -> set[int]:
        me = psutil.Process()
        pids = {me.pid} | {c.pid for c in me.children(recursive=True)}
        if self.extra_pids is not None:
            pids |= set(self.extra_pids())
        return pids

    def _loop(self) -> None:
        while not self._stop.is_set():
            total = 0
            for pid in self._pids():
                with contextlib.suppress(psutil.Error):
                    rss = psutil.Process(pid).memory_info().rss
                    total += rss
                    self.peak_proc = max(self.peak_proc, rss)
            self.peak_total = max(self.peak_total, total)
            self._stop.wait(self.every_s)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _perturb_article(article: dict, k: int, rng: random.Random, base: Path) -> dict:
    """A variant of one sample article: title suffixed, sentences rotated, image paths made absolute."""
    out = json.loads(json.dumps(article))
    if isinstance(out.get("title"), str):
        out["title"] = f"{out['title']} (variant {k})"
    for para in out.get("paragraphs") or []:
        if not isinstance(para, dict):
            continue
        if isinstance(para.get("text"), str):
            sentences = _SENTENCE.split(para["text"].strip())
            if len(sentences) > 1:
                shift = rng.randrange(1, len(sentences))
                sentences = sentences[shift:] + sentences[:shift]
            para["text"] = " ".join(sentences) + f" (Variant {k}.)"
        for img in para.get("images") or []:
            if isinstance(img, dict) and isinstance(img.get("path"), str) and not os.path.isabs(img["path"]):
                img["path"] = str(base / img["path"])
    return out


def write_scaled_inbox(scale: int, inbox: Path, seed: int = 0) -> list[str]:
    """Write (scale - 1) perturbed copies of every sample shard into ``inbox``; return their shard names."""
    from dagster_project.catalog import SourceCatalogResource

    rng = random.Random(seed)
    inbox.mkdir(parents=True, exist_ok=True)
    names = []
    for shard, spec in sorted(SourceCatalogResource().sample_specs().items()):
        manifest = Path(spec.path)
        lines = manifest.read_text(encoding="utf-8").splitlines()
        for k in range(1, scale):
            out_lines = []
            for line in lines:
                try:
                    article = json.loads(line)
                except json.JSONDecodeError:
                    out_lines.append(line)  # malformed rows stay malformed (the dirty shard's point)
                    continue
                out_lines.append(json.dumps(_perturb_article(article, k, rng, manifest.parent))
                                 if isinstance(article, dict) else line)
            name = f"gen{k:02d}_{shard.removeprefix('sample-')}"
            tmp = inbox / f".{name}.part"
            tmp.write_text("\n".join(out_lines) + "\n", encoding="utf-8")
            tmp.rename(inbox / f"{name}.jsonl")
            names.append(name)
    return names


def _step_times(instance: dg.DagsterInstance, run_id: str) -> tuple[dict[str, float], dict[str, int], list[str]]:
    """Per-step seconds (STEP_START to SUCCESS/FAILURE), row counts, failed steps of one run."""
    starts, seconds, rows, failed = {}, {}, {}, []
    for entry in instance.all_logs(run_id):
        ev = entry.dagster_event
        if ev is None or ev.step_key is None:
            continue
        kind = ev.event_type_value
        if kind == "STEP_START":
            starts[ev.step_key] = entry.timestamp
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE") and ev.step_key in starts:
            seconds[ev.step_key] = entry.timestamp - starts[ev.step_key]
            if kind == "STEP_FAILURE":
                failed.append(ev.step_key)
        elif kind == "ASSET_MATERIALIZATION":
            count = ev.event_specific_data.materialization.metadata.get("dagster/row_count")
            if count is not None:
                rows[ev.step_key] = int(count.value)
    return seconds, rows, failed


def run_shard(ref: InstanceRef, job_name: str, executor: str, shard: str | None,
              instance: dg.DagsterInstance | None = None) -> tuple[bool, str]:
    """One run of ``job_name`` on ``executor`` (for ``shard``); returns (success, run_id)."""
    from dagster_project.definitions import reconstructable_job_on

    tags = {"dagster/partition": shard} if shard else {}
    with contextlib.ExitStack() as stack:
        if instance is None:
            instance = stack.enter_context(dg.DagsterInstance.from_ref(ref))
        with dg.execute_job(reconstructable_job_on(job_name, executor), instance=instance, tags=tags,
                            raise_on_error=False) as res:
            return res.success, res.run_id


@contextlib.contextmanager
def _env(values: dict[str, str]) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_cell(corpus: str, scale: int, executor: str, root: Path, workers: int, max_runs: int,
             with_training: bool) -> CellResult:
    """Materialize synthesis_job for every shard of ``corpus`` on ``executor`` (fresh home + instance)."""
    from dagster_project.definitions import register_shards
    from tests.scale.services import celery_workers, redis_server

    cell = root / f"{corpus}-{executor}"
    home, dagster_home = cell / "var", cell / "dagster_home"
    dagster_home.mkdir(parents=True, exist_ok=True)
    env = {"GME_DATA_HOME": str(home), "GME_DATA_STORAGE_URL": str(home / "storage"),
           "DAGSTER_HOME": str(dagster_home)}
    with contextlib.ExitStack() as stack:
        stack.enter_context(_env(env))
        if scale > 1:
            write_scaled_inbox(scale, home / "inbox")
        pool = None
        if executor == "celery":
            url = stack.enter_context(redis_server(cell / "redis"))
            broker, backend = f"{url}/0", f"{url}/1"
            stack.enter_context(_env({"GME_DATA_CELERY_BROKER": broker, "GME_DATA_CELERY_BACKEND": backend}))
            pool = stack.enter_context(celery_workers(broker, backend, cell / "celery", n=workers, env=env))
        instance = stack.enter_context(dg.instance_for_test(temp_dir=str(dagster_home)))
        shards = register_shards(instance)
        sampler = stack.enter_context(RssSampler(pool.pids if pool else None))
        ref = instance.get_ref()
        t0 = time.perf_counter()
        if executor == "celery":
            # many runs in flight, one orchestrating process each (a Dagster instance is not safe to
            # share between threads); the workers bound the step parallelism
            with ProcessPoolExecutor(max_workers=max_runs, mp_context=mp.get_context("spawn")) as pp:
                outcomes = list(pp.map(run_shard, [ref] * len(shards), ["synthesis_job"] * len(shards),
                                       [executor] * len(shards), shards))
        else:
            outcomes = [run_shard(ref, "synthesis_job", executor, s, instance) for s in shards]
        wall = time.perf_counter() - t0
        training_s = None
        if with_training:
            t1 = time.perf_counter()
            outcomes.append(run_shard(ref, "training_eval_job", executor, None, instance))
            training_s = time.perf_counter() - t1
        result = CellResult(corpus, executor, len(shards), sum(ok for ok, _ in outcomes), wall, 0.0, 0.0,
                            training_s=training_s)
        step_s: dict[str, float] = defaultdict(float)
        rows: dict[str, int] = defaultdict(int)
        for _, run_id in outcomes:
            seconds, counts, failed = _step_times(instance, run_id)
            for k, v in seconds.items():
                step_s[k] += v
            for k, v in counts.items():
                rows[k] += v
            result.failed_steps += failed
        result.stage_step_s, result.stage_rows = dict(step_s), dict(rows)
    result.peak_rss_mb = sampler.peak_total / 2**20
    result.peak_proc_rss_mb = sampler.peak_proc / 2**20
    return result


def render(results: list[CellResult]) -> str:
    """A markdown table: one row per cell, items/s per stage."""
    stages = [s for s in STAGES if any(s in r.stage_rows for r in results)]
    extra = sorted({s for r in results for s in r.stage_rows} - set(stages))
    head = ["corpus", "executor", "shards", "runs ok", "wall s", "raw items/s (wall)"]
    head += [f"{s} items/s" for s in stages + extra] + ["peak RSS MB (sum)", "peak RSS MB (1 proc)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        raw = r.stage_rows.get("raw_corpus", 0)
        cells = [r.corpus, r.executor, str(r.shards), f"{r.runs_ok}/{r.shards + (1 if r.training_s else 0)}",
                 f"{r.wall_s:.1f}", f"{raw / r.wall_s:.2f}" if r.wall_s else "-"]
        for s in stages + extra:
            ips = r.items_per_s(s)
            cells.append(f"{ips:.2f} ({r.stage_rows.get(s, 0)} rows)" if ips is not None else "-")
        cells += [f"{r.peak_rss_mb:.0f}", f"{r.peak_proc_rss_mb:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="1x corpus only")
    ap.add_argument("--scale", type=int, default=10, help="size of the generated corpus, x sample (default 10)")
    ap.add_argument("--executors", default="in_process,celery", help="comma list of in_process,multiprocess,celery")
    ap.add_argument("--workers", type=int, default=2, help="Celery workers (concurrency 1 each)")
    ap.add_argument("--max-runs", type=int, default=4, help="runs in flight at once on the celery executor")
    ap.add_argument("--with-training", action="store_true", help="also run training_eval_job after synthesis")
    ap.add_argument("--workdir", default="", help="keep outputs here (default: a temp dir, removed)")
    ap.add_argument("--json", default="", help="also write the results to this JSON file")
    args = ap.parse_args(argv)

    root = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="gme-scale-"))
    corpora = [("1x", 1)] + ([] if args.quick else [(f"{args.scale}x", args.scale)])
    results = []
    try:
        for corpus, scale in corpora:
            for executor in [e.strip() for e in args.executors.split(",") if e.strip()]:
                print(f"== {corpus} on {executor} ...", file=sys.stderr, flush=True)
                r = run_cell(corpus, scale, executor, root, args.workers, args.max_runs, args.with_training)
                print(f"   {r.wall_s:.1f}s, {r.runs_ok}/{r.shards} runs ok, failed steps {r.failed_steps}",
                      file=sys.stderr, flush=True)
                results.append(r)
    finally:
        if not args.workdir:
            shutil.rmtree(root, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in results], indent=1))
    table = render(results)
    try:
        from rich.console import Console
        from rich.markdown import Markdown

        Console(width=200).print(Markdown(table))
    except ImportError:
        pass
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
