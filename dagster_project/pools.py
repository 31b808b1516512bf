"""Concurrency pools: what must not run twice at once on one machine or store, and the instance
settings that enforce it.

Each pool is held by a whole step (Dagster claims a slot before the step starts and frees it when
the step ends); the instance's limit says how many steps may hold it at once:

* ``gme_llm_server``: ``generated_queries`` starts a local llama.cpp server (threads spinning on
  every core it gets); two at once on one machine halve each other's speed.
* ``gme_gpu``: training, mining and evaluation steps that load the embedder on the accelerator.
* ``gme_image_pool_index``: ``fused_queries`` appends its shard's images to the faiss image pool.
* ``gme_duckdb_lineage``: steps writing lineage into the one DuckDB file (only when the DuckDB
  lineage backend is selected when the definitions load; the Parquet backend has no shared writer).

A step has one pool, so a step in the LLM, GPU or image-pool pool that also writes DuckDB lineage
is not in the lineage pool; DuckDB's own file lock (with the store's retry) still orders those short
transactions, and guards against writers outside Dagster (the CLI, ad-hoc queries). Likewise the
image pool keeps its file lock: the pool limit is per Dagster instance, the index folder is per
file system, so two instances (or a ``dagster dev`` with a DAGSTER_HOME without these limits)
sharing ``GME_DATA_HOME`` are still ordered. Partition locks (``partition_lock.py``) stay for the
same reason: they order writers of one shard across instances and outside Dagster.

The executors all honour pools: the in-process and multiprocess executors and dagster-celery's
(its core execution loop claims slots through the same ``InstanceConcurrencyContext``).
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

LLM_SERVER = "gme_llm_server"
GPU = "gme_gpu"
IMAGE_POOL_INDEX = "gme_image_pool_index"
DUCKDB_LINEAGE = "gme_duckdb_lineage"

#: One step at a time in each pool (the instance's ``pools.default_limit``; per pool changeable in the
#: UI under Deployment > Concurrency or with ``dagster instance concurrency set <pool> <n>``).
DEFAULT_LIMIT = 1

#: Dagster's "Join the Dagster community" dialog (its new-user experience, "nux") is switched off: an
#: operator opening ``dagster dev`` lands on the asset graph, not behind a sign-up modal.
NUX_YAML = """nux:
  enabled: false
"""

INSTANCE_YAML = f"""telemetry:
  enabled: false
{NUX_YAML}concurrency:
  pools:
    granularity: op
    default_limit: {DEFAULT_LIMIT}
"""


def lineage_pool() -> str | None:
    """The DuckDB lineage pool when the DuckDB backend is selected now (the default), else none."""
    backend = (os.environ.get("GME_DATA_LINEAGE_BACKEND") or "duckdb").strip().lower()
    return DUCKDB_LINEAGE if backend == "duckdb" else None


def write_instance_config(home: Path, overwrite: bool = True) -> Path:
    """Write ``dagster.yaml`` with the pool limits (telemetry and the community dialog off) into ``home``;
    return its path. A kept file (``overwrite=False``) that has no ``nux`` section gets it appended."""
    home.mkdir(parents=True, exist_ok=True)
    cfg = home / "dagster.yaml"
    if overwrite or not cfg.exists():
        cfg.write_text(INSTANCE_YAML)
    elif not any(line.startswith("nux:") for line in cfg.read_text().splitlines()):
        text = cfg.read_text()
        cfg.write_text(text + ("" if not text or text.endswith("\n") else "\n") + NUX_YAML)
    return cfg


def pools_of(defs: dg.Definitions) -> dict[str, str | None]:
    """Each asset's pool, by asset name (for docs and tests)."""
    out: dict[str, str | None] = {}
    for a in defs.assets or []:
        if isinstance(a, dg.AssetsDefinition) and a.is_executable:
            for key in a.keys:
                out[key.to_user_string()] = a.op.pool
    return out


def llm_pool() -> str | None:
    """``generated_queries``' pool: the LLM server's when the local server is the generator (the
    default), else the lineage pool (a remote endpoint or the rules need no machine-wide limit)."""
    backend = (os.environ.get("GME_DATA_LLM_BACKEND") or "").strip().lower()
    if not backend:
        backend = "openai" if os.environ.get("GME_DATA_LLM_BASE_URL") else "local"
    return LLM_SERVER if backend == "local" else lineage_pool()


ALL_POOLS = (LLM_SERVER, GPU, IMAGE_POOL_INDEX, DUCKDB_LINEAGE)


def apply_pool_limits(instance: dg.DagsterInstance, limit: int = DEFAULT_LIMIT) -> None:
    """Create each pool's slots up front, so two runs starting in the same instant cannot both find a
    pool uninitialized and both take a first slot (seen with two Celery runs on SQLite storage)."""
    for pool in ALL_POOLS:
        info = instance.event_log_storage.get_concurrency_info(pool)
        if info.slot_count != limit and info.using_default_limit:
            instance.event_log_storage.set_concurrency_slots(pool, limit)
