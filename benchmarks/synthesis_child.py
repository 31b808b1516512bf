"""One measurement of the synthesis benchmark, run in its own process (see synthesis_scale.py).

Runs ``synthesis_job`` in process on the given shard manifests (copied into a fresh
GME_DATA_HOME's inbox) against a temporary Dagster instance, and writes a JSON result: per-stage
seconds (STEP_START to STEP_SUCCESS), rows, kept/dropped counts per reason, the stages' numeric
metadata, wall time and this process's peak RSS (``ru_maxrss``). The project code comes from
PYTHONPATH, so the same file measures any git revision of the project.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import time
from pathlib import Path


def _drops(md_text: str) -> dict[str, int]:
    """``reason -> count`` from the ``drops_by_reason`` markdown table."""
    out: dict[str, int] = {}
    for line in md_text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[1].isdigit():
            out[cells[0].replace("\\_", "_")] = int(cells[1])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--manifest", action="append", default=[], help="a shard manifest (JSONL); repeatable")
    ap.add_argument("--sample", action="store_true", help="run the bundled sample shards instead")
    ap.add_argument("--home", required=True, help="fresh working folder (GME_DATA_HOME and Dagster home)")
    ap.add_argument("--out", required=True, help="write the JSON result here")
    args = ap.parse_args(argv)

    home = Path(args.home)
    dagster_home = home / "dagster_home"
    dagster_home.mkdir(parents=True, exist_ok=True)
    os.environ.update({"GME_DATA_HOME": str(home / "var"), "GME_DATA_STORAGE_URL": str(home / "var" / "storage"),
                       "DAGSTER_HOME": str(dagster_home), "GME_DATA_LLM_BACKEND": "offline-rules",
                       "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
                       "GX_ANALYTICS_ENABLED": "False"})
    inbox = home / "var" / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    roots = []
    for m in args.manifest:
        shutil.copy(m, inbox / Path(m).name)
        roots.append(str(Path(m).resolve().parent))  # the corpus's images stay where they were written
    if roots:
        os.environ["GME_DATA_ALLOWED_ROOTS"] = os.pathsep.join(roots)

    import dagster as dg

    from dagster_project.catalog import SourceCatalogResource
    from dagster_project.definitions import defs
    from dagster_project.partitions import source_shards

    catalog = SourceCatalogResource()
    if args.sample:
        shards = sorted(catalog.sample_specs())
    else:
        shards = sorted(catalog.inbox_specs()) if hasattr(catalog, "inbox_specs") else sorted(
            s for s in catalog.shards() if not s.startswith("sample-"))
    job = defs.resolve_job_def("synthesis_job")
    result: dict = {"shards": shards, "stage_s": {}, "rows": {}, "kept": {}, "dropped": {}, "drops": {},
                    "metadata": {}, "failed": [], "code": str(Path(sys.modules["gme_data"].__file__).parent.parent)}
    t_all = time.perf_counter()
    with dg.instance_for_test(temp_dir=str(dagster_home)) as instance:
        instance.add_dynamic_partitions(source_shards.name, shards)
        for shard in shards:
            res = job.execute_in_process(instance=instance, partition_key=shard, raise_on_error=False)
            starts: dict[str, float] = {}
            for entry in instance.all_logs(res.run_id):
                ev = entry.dagster_event
                if ev is None or ev.step_key is None:
                    continue
                step, kind = ev.step_key, ev.event_type_value
                if kind == "STEP_START":
                    starts[step] = entry.timestamp
                elif kind in ("STEP_SUCCESS", "STEP_FAILURE") and step in starts:
                    result["stage_s"][step] = result["stage_s"].get(step, 0.0) + entry.timestamp - starts[step]
                    if kind == "STEP_FAILURE":
                        result["failed"].append(f"{shard}:{step}")
                elif kind == "ASSET_MATERIALIZATION":
                    md = ev.event_specific_data.materialization.metadata
                    for key, value in md.items():
                        v = getattr(value, "value", None)
                        if key == "dagster/row_count":
                            result["rows"][step] = result["rows"].get(step, 0) + int(v)
                        elif key == "records_kept":
                            result["kept"][step] = result["kept"].get(step, 0) + int(v)
                        elif key == "records_dropped":
                            result["dropped"][step] = result["dropped"].get(step, 0) + int(v)
                        elif key == "drops_by_reason" and isinstance(getattr(value, "md_str", None), str):
                            acc = result["drops"].setdefault(step, {})
                            for reason, n in _drops(value.md_str).items():
                                acc[reason] = acc.get(reason, 0) + n
                        elif isinstance(v, (int, float)) and not isinstance(v, bool):
                            result["metadata"].setdefault(step, {})[key] = v
    result["wall_s"] = time.perf_counter() - t_all
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    Path(args.out).write_text(json.dumps(result, indent=1), encoding="utf-8")
    return 0 if not result["failed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
