"""What is stale and why, from Dagster's own stale-status resolver (what the UI's "unsynced" shows).

    python -m dagster_project.staleness     # every materialized asset partition that is not in sync
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import dagster as dg
from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
from dagster._core.loader import LoadingContext


class _Loading(LoadingContext):
    """The per-request cache the resolver wants (one per report)."""

    def __init__(self, instance: dg.DagsterInstance):
        self._instance = instance
        self._loaders: dict = {}

    @property
    def instance(self) -> dg.DagsterInstance:
        return self._instance

    @property
    def loaders(self) -> dict:
        return self._loaders


@dataclass(frozen=True)
class Staleness:
    """One asset partition's status ("FRESH", "STALE", "MISSING") and the reasons it is stale."""

    status: str
    reasons: tuple[str, ...]


def resolver(instance: dg.DagsterInstance, defs: dg.Definitions) -> CachingStaleStatusResolver:
    return CachingStaleStatusResolver(instance, defs.resolve_asset_graph(), _Loading(instance))


def staleness(instance: dg.DagsterInstance, defs: dg.Definitions, asset: str,
              partition: str | None = None) -> Staleness:
    """``asset``'s (``partition``'s) status against ``defs`` as Dagster resolves it, with the causes."""
    res = resolver(instance, defs)
    key = dg.AssetKey(asset)
    causes = res.get_stale_causes(key, partition)
    reasons = tuple(f"{c.asset_key.to_user_string()}: {c.reason}"
                    + (f" ({c.dependency.asset_key.to_user_string()})" if c.dependency else "") for c in causes)
    return Staleness(res.get_status(key, partition).value, reasons)


def main() -> int:
    from dagster_project.definitions import defs

    instance = dg.DagsterInstance.get()
    graph = defs.resolve_asset_graph()
    for key in sorted(graph.materializable_asset_keys, key=lambda k: k.to_user_string()):
        node = graph.get(key)
        parts = (node.partitions_def.get_partition_keys(dynamic_partitions_store=instance)
                 if node.partitions_def else [None])
        for p in parts:
            s = staleness(instance, defs, key.to_user_string(), p)
            if s.status == StaleStatus.STALE.value:
                print(f"{key.to_user_string()}[{p or '-'}] STALE: " + "; ".join(s.reasons))
    return 0


if __name__ == "__main__":
    sys.exit(main())
