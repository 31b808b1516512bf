"""A tiny real upstream for grid tests: text-to-text samples from the bundled sample corpus."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from gme_data.sample_corpus import __file__ as sample_init

INSTRUCTION = "Given a query, retrieve relevant passages that answer the query."


def filtered_samples(n: int = 36) -> pd.DataFrame:
    """``filtered_samples`` rows: a paragraph's first words (with its article's title) ask for it."""
    rows = []
    for line in (Path(sample_init).parent / "data" / "wiki_01.jsonl").read_text().splitlines():
        article = json.loads(line)
        for j, para in enumerate(article["paragraphs"][:2]):
            words = para["text"].split()
            rows.append({"id": f"fs-{len(rows)}", "combination": "T->T", "instruction": INSTRUCTION,
                         "query_text": f"{article['title']}: {' '.join(words[:6])}?", "query_image": None,
                         "pos_id": f"cand-{article['title']}-{j}", "pos_text": para["text"], "pos_image": None,
                         "source_id": article["title"]})
    return pd.DataFrame(rows[:n])
