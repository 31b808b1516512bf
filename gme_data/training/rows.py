"""Training-set rows as Items: query, positive, negatives, instruction and identity keys."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field

import pandas as pd

from gme_data.errors import InvalidInputError
from gme_data.mining.embedding import list_value, row_item
from gme_data.records import Item
from gme_data.tables import value_or_none


@dataclass
class TrainRow:
    id: str
    combination: str
    instruction: str | None
    query: Item
    positive: Item
    pos_key: Hashable
    negatives: list[Item] = field(default_factory=list)
    neg_keys: list[Hashable] = field(default_factory=list)
    split: str = "train"


def item_key(item_id: object, text: str | None, image: object) -> Hashable:
    """Candidate identity: its id when known, else its content (text, image path)."""
    iid = value_or_none(item_id)
    if iid is not None:
        return ("id", str(iid))
    return ("content", text, str(image) if image is not None else None)


def table_rows(table: pd.DataFrame, max_negatives: int | None = None) -> list[TrainRow]:
    """Rows of a ``training_set`` / ``hard_negatives`` / ``filtered_samples`` table as :class:`TrainRow`."""
    need = ("id", "query_text", "query_image", "pos_text", "pos_image")
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise InvalidInputError(f"training table is missing columns {missing}")
    out: list[TrainRow] = []
    for i, r in enumerate(table.to_dict("records")):
        where = f"training table row {i} (id {r.get('id')})"
        q = row_item(r, "query_text", "query_image", r.get("id"), where=where)
        p = row_item(r, "pos_text", "pos_image", r.get("pos_id"), where=where)
        ids, texts, images = (list_value(r.get(c)) for c in ("neg_ids", "neg_texts", "neg_images"))
        n = max(len(texts), len(images))
        negs, keys = [], []
        for j in range(n):
            t = value_or_none(texts[j]) if j < len(texts) else None
            im = value_or_none(images[j]) if j < len(images) else None
            nid = ids[j] if j < len(ids) else None
            negs.append(row_item({"t": t, "i": im}, "t", "i", nid, where=f"{where} negative {j}"))
            keys.append(item_key(nid, t, im))
        if max_negatives is not None:
            negs, keys = negs[:max_negatives], keys[:max_negatives]
        comb = value_or_none(r.get("combination")) or "?"
        out.append(TrainRow(id=str(r["id"]), combination=str(comb), instruction=value_or_none(r.get("instruction")),
                            query=q, positive=p, pos_key=item_key(r.get("pos_id"), p.text, p.image),
                            negatives=negs, neg_keys=keys, split=value_or_none(r.get("split")) or "train"))
    return out
