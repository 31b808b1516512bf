"""Synthesis at scale: synthesis_job on generated corpora of N distinct paragraphs, ours vs. a baseline revision.

For each size N (default 1k, 4k, 16k) a corpus of N distinct paragraphs, about a third with a
distinct image, is written once (benchmarks/synthesis_corpus.py); each measurement runs
``synthesis_job`` in process in its own child process (benchmarks/synthesis_child.py) against a
temporary Dagster instance and a fresh GME_DATA_HOME, with the offline-rules query generator. The
table gives per-stage seconds, items/s (rows out / stage seconds), seconds per paragraph end to end
and the child's peak RSS. ``--baseline REV`` checks REV out with ``git worktree add`` into a temp
folder and runs the same corpora with PYTHONPATH pointing there (same virtualenv), then prints the
ratios baseline / ours.

    python benchmarks/synthesis_scale.py --sizes 1000,4000,16000 --baseline d2c0ced --baseline-sizes 4000
    python benchmarks/synthesis_scale.py --sample-decisions --baseline d2c0ced   # kept/dropped on the sample
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from synthesis_corpus import write_corpus  # noqa: E402

STAGES = ["raw_corpus", "candidates", "generated_queries", "fused_queries", "filtered_samples"]


@contextmanager
def baseline_tree(rev: str):
    """A detached ``git worktree`` of ``rev`` in a temp folder (removed afterwards)."""
    tmp = Path(tempfile.mkdtemp(prefix="gme-baseline-"))
    tree = tmp / "tree"
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), rev], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield tree
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(tmp, ignore_errors=True)


def run_child(code_root: Path, work: Path, label: str, manifest: Path | None, log_to: Path | None = None,
              timeout_s: float | None = None) -> dict:
    """Run synthesis_child.py with ``code_root`` on PYTHONPATH; return its JSON result (plus ``label``)."""
    home = work / f"home-{label}"
    shutil.rmtree(home, ignore_errors=True)
    out = work / f"result-{label}.json"
    cmd = [sys.executable, str(HERE / "synthesis_child.py"), "--home", str(home), "--out", str(out)]
    cmd += ["--manifest", str(manifest)] if manifest is not None else ["--sample"]
    env = {**os.environ, "PYTHONPATH": str(code_root)}
    t0 = time.perf_counter()
    with open(log_to or os.devnull, "w") as log:
        proc = subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=timeout_s, check=False)
    if not out.is_file():
        raise RuntimeError(f"benchmark child {label} failed (rc {proc.returncode}); log: {log_to}")
    result = json.loads(out.read_text())
    result.update(label=label, rc=proc.returncode, process_s=time.perf_counter() - t0)
    shutil.rmtree(home, ignore_errors=True)
    return result


def _total(r: dict) -> float:
    return sum(r["stage_s"].get(s, 0.0) for s in STAGES)


def render(results: list[dict]) -> str:
    """One row per (code, size): seconds per stage, items/s per stage, total, s/1k paragraphs, peak RSS."""
    head = ["code", "paragraphs"] + [f"{s} s (items/s)" for s in STAGES] + ["total s", "s / 1k para",
                                                                              "peak RSS MB", "ok"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        cells = [r["code_label"], str(r["size"])]
        for s in STAGES:
            sec, rows = r["stage_s"].get(s), r["rows"].get(s, 0)
            cells.append("-" if sec is None else f"{sec:.1f} ({rows / sec:.0f})" if sec > 0 else "0")
        total = _total(r)
        cells += [f"{total:.1f}", f"{1000 * total / r['size']:.1f}", f"{r['peak_rss_mb']:.0f}",
                  "yes" if not r["failed"] else "FAILED " + ",".join(r["failed"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_ratios(results: list[dict]) -> str:
    """baseline / ours per stage and end to end, for each size measured with both."""
    ours = {r["size"]: r for r in results if r["code_label"] == "ours"}
    base = {r["size"]: r for r in results if r["code_label"] != "ours"}
    lines = ["| paragraphs | " + " | ".join(STAGES) + " | end to end (speed-up) |", "|" + "---|" * (len(STAGES) + 2)]
    for size in sorted(set(ours) & set(base)):
        o, b = ours[size], base[size]
        cells = [str(size)]
        for s in STAGES:
            os_, bs = o["stage_s"].get(s), b["stage_s"].get(s)
            cells.append(f"{bs / os_:.2f}x" if os_ and bs else "-")
        cells.append(f"{_total(b) / _total(o):.2f}x")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def decision_counts(r: dict) -> dict[str, dict[str, int]]:
    """stage -> {'kept': n, 'dropped': n, 'dropped:<reason>': n}."""
    out: dict[str, dict[str, int]] = {}
    for s in STAGES:
        row = {"kept": r["kept"].get(s, 0), "dropped": r["dropped"].get(s, 0)}
        for reason, n in sorted(r["drops"].get(s, {}).items()):
            row[f"dropped:{reason}"] = n
        out[s] = row
    return out


def render_decisions(before: dict, after: dict) -> str:
    """Kept/dropped per stage and reason on the bundled sample, before (baseline) and after (ours)."""
    b, a = decision_counts(before), decision_counts(after)
    lines = ["| stage | count | before | after | diff |", "|---|---|---|---|---|"]
    for s in STAGES:
        for key in sorted(set(b[s]) | set(a[s]), key=lambda k: (k != "kept", k != "dropped", k)):
            x, y = b[s].get(key, 0), a[s].get(key, 0)
            lines.append(f"| {s} | {key} | {x} | {y} | {'' if x == y else f'{y - x:+d}'} |")
    return "\n".join(lines)


def _print(table: str) -> None:
    try:
        from rich.console import Console
        from rich.markdown import Markdown

        Console(width=220, stderr=True).print(Markdown(table))
    except ImportError:
        pass
    print(table, flush=True)


def _sizes(text: str) -> list[int]:
    sizes = [int(s) for s in text.split(",") if s.strip()]
    if any(s < 1 for s in sizes):
        raise SystemExit(f"sizes must be positive integers, got {text!r}")
    return sizes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000,4000,16000", help="corpus sizes for our code (comma list)")
    ap.add_argument("--baseline", default="", help="git revision to measure side by side (e.g. d2c0ced)")
    ap.add_argument("--baseline-sizes", default="", help="sizes for the baseline (default: --sizes)")
    ap.add_argument("--sample-decisions", action="store_true",
                    help="run the bundled sample with --baseline and ours; print kept/dropped per stage and reason")
    ap.add_argument("--workdir", default="", help="keep corpora, logs and results here (default: temp, removed)")
    ap.add_argument("--json", default="", help="also write all results to this JSON file")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="gme-synth-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    results: list[dict] = []
    try:
        with baseline_tree(args.baseline) if args.baseline else _nothing() as base_root:
            if args.sample_decisions:
                if base_root is None:
                    raise SystemExit("--sample-decisions needs --baseline REV (the 'before')")
                before = run_child(base_root, work, "sample-baseline", None, work / "sample-baseline.log")
                after = run_child(REPO, work, "sample-ours", None, work / "sample-ours.log")
                results += [before, after]
                _print(render_decisions(before, after))
            else:
                sizes = _sizes(args.sizes)
                base_sizes = _sizes(args.baseline_sizes) if args.baseline_sizes else sizes
                plan = [("ours", REPO, n) for n in sizes]
                if base_root is not None:
                    plan += [(f"baseline {args.baseline}", base_root, n) for n in base_sizes]
                plan.sort(key=lambda p: p[2])  # the same size back to back: both see the same load
                corpora: dict[int, Path] = {}
                for code_label, root, n in plan:
                    if n not in corpora:
                        corpora[n] = write_corpus(n, work / "corpora", seed=args.seed)
                    label = f"{'ours' if code_label == 'ours' else 'base'}-{n}"
                    print(f"== {code_label} at {n} paragraphs (load {os.getloadavg()[0]:.2f}) ...", file=sys.stderr,
                          flush=True)
                    r = run_child(root, work, label, corpora[n], work / f"{label}.log")
                    r.update(code_label=code_label, size=n)
                    print(f"   {_total(r):.1f} s in stages, peak RSS {r['peak_rss_mb']:.0f} MB, failed {r['failed']}",
                          file=sys.stderr, flush=True)
                    results.append(r)
                _print(render(results))
                if base_root is not None:
                    _print(render_ratios(results))
                print(f"load average at the end: {os.getloadavg()}", flush=True)
    finally:
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    return 0


@contextmanager
def _nothing():
    yield None


if __name__ == "__main__":
    raise SystemExit(main())
