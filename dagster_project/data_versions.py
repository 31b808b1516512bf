"""Data versions from content: the hash of the table (or manifest) a materialization writes.

Dagster compares an asset's data version with the one its downstream materializations consumed: a
re-materialization that writes identical rows keeps the same data version, so downstream stays in
sync; one that changes any row, column or dtype gets a new one, so downstream shows as stale.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import dagster as dg
import pandas as pd

VERSION_CHARS = 24


def content_hash(obj: Any) -> str:
    """A hash of ``obj``'s content: a DataFrame by columns, dtypes and every cell; a dict by its JSON."""
    h = hashlib.sha256()
    if isinstance(obj, pd.DataFrame):
        df = obj.reset_index(drop=True)
        h.update(json.dumps([[str(c), str(t)] for c, t in df.dtypes.items()]).encode())
        for col in df.columns:
            h.update(b"\0col\0" + str(col).encode())
            h.update(_column_bytes(df[col]))
    else:
        h.update(json.dumps(obj, sort_keys=True, default=str).encode())
    return h.hexdigest()[:VERSION_CHARS]


def _column_bytes(col: pd.Series) -> bytes:
    try:
        return pd.util.hash_pandas_object(col, index=False).values.tobytes()
    except TypeError:  # unhashable cells (lists, dicts, arrays): hash their JSON text
        return "\n".join(json.dumps(v, sort_keys=True, default=_plain) for v in col.tolist()).encode()


def _plain(v: Any) -> Any:
    return v.tolist() if hasattr(v, "tolist") else str(v)


def data_version(obj: Any) -> dg.DataVersion:
    """The Dagster data version of a table or manifest."""
    return dg.DataVersion(content_hash(obj))
