"""Query generation by the rules vs. the local model (SmolLM2-135M through llama.cpp's server).

For each generator, in a fresh GME_DATA_HOME and Dagster instance, ``synthesis_job`` runs over the
bundled sample shards (same seed and settings); the script reports requests, median request latency,
tokens, and rows kept / dropped per reason at ``generated_queries`` and ``filtered_samples`` (from
lineage). With ``--train`` it then runs ``training_eval_job`` (same training budget) and reports the
local UMRB suite for the base model and the model trained on each generator's data.

    python benchmarks/llm_vs_rules.py                      # both generators, all sample shards
    python benchmarks/llm_vs_rules.py --train --out out/llm_vs_rules.json
    python benchmarks/llm_vs_rules.py --backends local --shards sample-wiki_01
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import dagster as dg  # noqa: E402

STAGES = ("raw_corpus", "candidates", "generated_queries", "fused_queries", "filtered_samples")


class RequestTimer:
    """Times every HTTP request the chat client sends (wraps ``ChatClient._send`` for this process)."""

    def __init__(self) -> None:
        from gme_data.generation.client import ChatClient

        self.durations: list[float] = []
        self._cls = ChatClient
        self._orig = ChatClient._send
        timer = self

        def timed(client: Any, *args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return timer._orig(client, *args, **kwargs)
            finally:
                timer.durations.append(time.perf_counter() - t0)

        ChatClient._send = timed  # type: ignore[method-assign]

    def close(self) -> None:
        self._cls._send = self._orig  # type: ignore[method-assign]


def _stage_counts(store: Any, asset: str) -> dict[str, Any]:
    rows = store.query("SELECT status, coalesce(reason, '') AS reason, count(*) AS n FROM records "
                       "WHERE asset_key = ? GROUP BY 1, 2 ORDER BY 3 DESC", [asset])
    kept = int(rows[rows["status"] == "kept"]["n"].sum())
    drops = {r["reason"]: int(r["n"]) for r in rows[rows["status"] == "dropped"].to_dict("records")}
    return {"kept": kept, "dropped": sum(drops.values()), "drops": drops}


def run_backend(backend: str, shards: list[str] | None, train: bool, epochs: int,
                concurrency: int | None = None) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix=f"llm_vs_rules_{backend}_"))
    os.environ.update({"GME_DATA_HOME": str(home), "GME_DATA_STORAGE_URL": str(home / "storage"),
                       "DAGSTER_HOME": str(home / "dagster_home"), "GME_DATA_LLM_BACKEND": backend})
    os.environ.pop("GME_DATA_REPORTS_URL", None)
    from dagster_project.definitions import defs, register_shards
    from gme_data.lineage import LineageStore

    instance = dg.DagsterInstance.ephemeral()
    keys = register_shards(instance, shards)
    timer = RequestTimer()
    out: dict[str, Any] = {"backend": backend, "shards": keys, "runs_ok": 0, "concurrency": concurrency}
    run_config = {"resources": {"llm": {"config": {"concurrency": concurrency}}}} if concurrency else {}
    reports: list[dict[str, Any]] = []
    t0 = time.time()
    try:
        for key in keys:
            res = defs.resolve_job_def("synthesis_job").execute_in_process(
                instance=instance, partition_key=key, raise_on_error=False, run_config=run_config,
                asset_selection=[dg.AssetKey(s) for s in STAGES])
            out["runs_ok"] += int(res.success)
            for m in res.get_asset_materialization_events():
                if m.asset_key.to_user_string() == "generated_queries":
                    value = m.materialization.metadata["run_report"].value
                    reports.append(value if isinstance(value, dict) else json.loads(value))
    finally:
        timer.close()
    out["synthesis_s"] = round(time.time() - t0, 1)
    lat = timer.durations
    out.update({
        "model": sorted({r["model"] for r in reports}),
        "requests": sum(r["requests"] for r in reports),
        "median_latency_s": round(statistics.median(lat), 3) if lat else None,
        "prompt_tokens": sum(r["prompt_tokens"] for r in reports),
        "completion_tokens": sum(r["completion_tokens"] for r in reports),
        "generation_s": round(sum(r["elapsed_s"] for r in reports), 1),
    })
    store = LineageStore(home / "lineage.duckdb")
    out["generated_queries"] = _stage_counts(store, "generated_queries")
    out["filtered_samples"] = _stage_counts(store, "filtered_samples")
    if train:
        t1 = time.time()
        train_cfg = {"config": {"epochs": epochs}}
        res = defs.resolve_job_def("training_eval_job").execute_in_process(
            instance=instance, raise_on_error=False,
            run_config={"ops": {"gme_model_stage1": train_cfg, "gme_model": train_cfg}})
        out["training_ok"] = res.success
        out["training_s"] = round(time.time() - t1, 1)
        scores = home / "storage" / "umrb_eval" / "__all__.parquet"
        if scores.exists():
            import pandas as pd

            df = pd.read_parquet(scores)
            out["umrb"] = {f"{r['model']}/{r['dataset']}": round(float(r["score"]), 2)
                           for r in df.to_dict("records")}
        out["training_set"] = _stage_counts(store, "training_set")
    out["home"] = str(home)
    return out


def _md(results: list[dict[str, Any]]) -> str:
    lines = ["| | " + " | ".join(r["backend"] for r in results) + " |", "|---" * (len(results) + 1) + "|"]
    for label, get in (
        ("model", lambda r: ", ".join(r["model"])),
        ("requests", lambda r: r["requests"]),
        ("requests in flight", lambda r: r["concurrency"] or "resource default"),
        ("median latency s (client side)", lambda r: r["median_latency_s"]),
        ("tokens (prompt + completion)", lambda r: f"{r['prompt_tokens']} + {r['completion_tokens']}"),
        ("generation s", lambda r: r["generation_s"]),
        ("generated_queries kept", lambda r: r["generated_queries"]["kept"]),
        ("generated_queries dropped", lambda r: _drops(r["generated_queries"])),
        ("filtered_samples kept", lambda r: r["filtered_samples"]["kept"]),
        ("filtered_samples dropped", lambda r: _drops(r["filtered_samples"])),
    ):
        lines.append(f"| {label} | " + " | ".join(str(get(r)) for r in results) + " |")
    return "\n".join(lines)


def _drops(counts: dict[str, Any]) -> str:
    detail = ", ".join(f"{k} {v}" for k, v in counts["drops"].items())
    return f"{counts['dropped']} ({detail})" if detail else "0"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", nargs="+", default=["offline-rules", "local"])
    parser.add_argument("--shards", nargs="*", help="default: every sample shard")
    parser.add_argument("--train", action="store_true", help="also train + evaluate (training_eval_job)")
    parser.add_argument("--epochs", type=int, default=2, help="training epochs per stage (--train)")
    parser.add_argument("--concurrency", type=int, help="requests in flight (default: the llm resource's)")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    results = [run_backend(b, args.shards, args.train, args.epochs, args.concurrency) for b in args.backends]
    print(_md(results))
    if args.train:
        for r in results:
            print(r["backend"], json.dumps(r.get("umrb", {}), indent=None))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))
    return 0 if all(r["runs_ok"] == len(r["shards"]) for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
