"""Partitions: raw data shards (dynamic: the inbox sensor adds them) and UMRB datasets."""

import dagster as dg

#: One partition per raw source shard (sample shards and inbox drops).
source_shards = dg.DynamicPartitionsDefinition(name="source_shard")
