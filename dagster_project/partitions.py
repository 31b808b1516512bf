"""Partitions: raw data shards (dynamic: the inbox sensor adds them), candidate domains and UMRB datasets."""

import dagster as dg

from gme_data.candidates.domains import DOMAINS
from gme_data.evaluation.registry import LOCAL_REGISTRY, REGISTRY

#: One partition per raw source shard (sample shards and inbox drops).
source_shards = dg.DynamicPartitionsDefinition(name="source_shard")

#: One partition per candidate domain (GME balances its synthesized data over these).
domains = dg.StaticPartitionsDefinition(list(DOMAINS))

#: One partition per evaluation dataset: the bundled local suite first, then UMRB's 47.
umrb_datasets = dg.StaticPartitionsDefinition([*LOCAL_REGISTRY, *REGISTRY])
