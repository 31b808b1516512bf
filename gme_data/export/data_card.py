"""The data card (``README.md`` with the hub's YAML header) of an exported dataset, built from lineage.

Every number in the card is the result of a SQL query over the lineage tables (``runs``, ``assets``,
``records``, ``edges``; see :mod:`gme_data.lineage`), and the card prints that query under its
table, so anyone with ``lineage.duckdb`` reproduces it::

    duckdb var/lineage.duckdb "<the query>"

Nothing in the card is typed by hand: the sections are :class:`CardFact` objects (title, SQL,
result) and the YAML header is derived from them and from the export itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from gme_data.errors import ExportError
from gme_data.export.hf_dataset import hub_configs
from gme_data.lineage import utc_now

#: The synthesis and training stages whose drops, settings and gates the card reports.
PIPELINE_STAGES: tuple[str, ...] = ("raw_corpus", "candidates", "generated_queries", "fused_queries",
                                    "filtered_samples", "hard_negatives", "training_set", "domain_datasets")
NOT_STATED = "not stated in the source spec"


@dataclass
class CardFact:
    """One section of the card: a title, the lineage SQL and what it returned."""

    key: str
    title: str
    sql: str
    frame: pd.DataFrame
    note: str = ""


def _q(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _scope(asset_key: str, partition: str | None) -> str:
    where = f"asset_key = {_q(asset_key)} AND status = 'kept'"
    return where + (f" AND partition = {_q(partition)}" if partition is not None else "")


def _stages_in(stages: Sequence[str]) -> str:
    return "(" + ", ".join(_q(s) for s in stages) + ")"


def card_queries(asset_key: str = "training_set", partition: str | None = None) -> list[tuple[str, str, str, str]]:
    """``(key, title, sql, note)`` of every fact for the export of ``asset_key`` (``partition``)."""
    rows = f"SELECT * FROM records WHERE {_scope(asset_key, partition)}"
    stages = _stages_in(PIPELINE_STAGES)
    return [
        ("rows", "Rows per combination and split",
         "SELECT json_extract_string(payload, '$.combination') AS combination,\n"
         "       coalesce(json_extract_string(payload, '$.split'), 'train') AS split, count(*) AS rows\n"
         f"FROM records WHERE {_scope(asset_key, partition)}\nGROUP BY ALL ORDER BY combination, split", ""),
        ("domains", "Domains (of each row's positive candidate)",
         "SELECT json_extract_string(c.payload, '$.domain') AS domain, count(*) AS rows\n"
         f"FROM ({rows}) t\n"
         "JOIN (SELECT DISTINCT record_id, payload::VARCHAR AS payload FROM records\n"
         "      WHERE asset_key = 'candidates' AND status = 'kept') c\n"
         "  ON c.record_id = json_extract_string(t.payload, '$.pos_id')\n"
         "GROUP BY ALL ORDER BY rows DESC, domain", ""),
        ("sources", "Sources and licences",
         "SELECT partition AS shard, json_extract_string(metadata, '$.source_name') AS source,\n"
         "       json_extract_string(metadata, '$.kind') AS kind,\n"
         f"       coalesce(json_extract_string(metadata, '$.license'), {_q(NOT_STATED)}) AS license,\n"
         "       n_kept AS raw_records_kept, n_dropped AS raw_records_dropped\n"
         "FROM assets WHERE asset_key = 'raw_corpus' ORDER BY shard",
         "Licences are copied from each shard's source spec (`license`); the data inherits them."),
        ("rows_by_source", "Rows per source",
         "SELECT json_extract_string(c.payload, '$.source') AS source, count(*) AS rows\n"
         f"FROM ({rows}) t\n"
         "JOIN (SELECT DISTINCT record_id, payload::VARCHAR AS payload FROM records\n"
         "      WHERE asset_key = 'candidates' AND status = 'kept') c\n"
         "  ON c.record_id = json_extract_string(t.payload, '$.pos_id')\n"
         "GROUP BY ALL ORDER BY rows DESC, source", ""),
        ("generator", "Query generator: model and prompt versions",
         "SELECT json_extract_string(payload, '$.model') AS model,\n"
         "       json_extract_string(payload, '$.prompt_version') AS prompt_version,\n"
         "       json_extract_string(payload, '$.style') AS style, count(*) AS queries\n"
         "FROM records WHERE asset_key = 'generated_queries' AND status = 'kept'\n"
         "GROUP BY ALL ORDER BY model, prompt_version, style", ""),
        ("thresholds", "Filters and their thresholds",
         "SELECT asset_key AS stage, partition, json_extract_string(metadata, '$.config.threshold') AS "
         "domain_confidence_min,\n"
         "       json_extract_string(metadata, '$.config.phash_distance') AS image_phash_distance,\n"
         "       json_extract_string(metadata, '$.thresholds') AS image_score_thresholds,\n"
         "       json_extract_string(metadata, '$.consistency_model') AS consistency_model,\n"
         "       json_extract_string(metadata, '$.consistency_top_k') AS consistency_top_k,\n"
         "       json_extract_string(metadata, '$.order') AS filter_order\n"
         "FROM assets WHERE asset_key IN ('candidates', 'filtered_samples') ORDER BY stage, partition", ""),
        ("drops", "Drops per stage and reason",
         "SELECT asset_key AS stage, reason, count(*) AS dropped\n"
         f"FROM records WHERE status = 'dropped' AND asset_key IN {stages}\n"
         "GROUP BY ALL ORDER BY stage, dropped DESC, reason", ""),
        ("mining", "Hard-negative mining settings",
         "SELECT asset_key AS stage, json_extract_string(metadata, '$.model') AS model,\n"
         "       json_extract_string(metadata, '$.k') AS k, json_extract_string(metadata, '$.top_n') AS top_n,\n"
         "       json_extract_string(metadata, '$.margin') AS margin,\n"
         "       json_extract_string(metadata, '$.max_score') AS max_score,\n"
         "       json_extract_string(metadata, '$.pool_size') AS pool_size,\n"
         "       json_extract_string(metadata, '$.false_negatives_removed') AS false_negatives_removed\n"
         "FROM assets WHERE asset_key LIKE 'hard_negatives%' ORDER BY stage", ""),
        ("negatives", "Hard negatives per row",
         "SELECT CAST(json_extract_string(h.payload, '$.n_negatives') AS INTEGER) AS negatives, count(*) AS rows\n"
         f"FROM ({rows}) t\n"
         "JOIN records h ON h.asset_key = 'hard_negatives' AND h.record_id = t.record_id\n"
         "GROUP BY ALL ORDER BY negatives", ""),
        ("gates", "Quality gates (Great Expectations)",
         "SELECT asset_key AS stage, partition, json_extract_string(metadata, '$.gate_passed') AS passed,\n"
         "       json_extract_string(metadata, '$.quality_gate') AS result\n"
         f"FROM assets WHERE asset_key IN {stages} ORDER BY stage, partition", ""),
    ]


def build_card_facts(store: Any, asset_key: str = "training_set", partition: str | None = None) -> list[CardFact]:
    """Run every card query on ``store`` (a :class:`~gme_data.lineage.LineageQueries`)."""
    facts = []
    for key, title, sql, note in card_queries(asset_key, partition):
        if key == "negatives" and asset_key != "training_set":
            continue  # slices before mining have no negatives
        try:
            frame = store.query(sql)
        except Exception as exc:
            raise ExportError(f"data card: lineage query {key!r} failed: {exc}") from exc
        facts.append(CardFact(key, title, sql, frame, note))
    rows = next(f for f in facts if f.key == "rows").frame
    if rows.empty:
        raise ExportError(f"data card: lineage has no kept {asset_key} records"
                          + (f" in partition {partition!r}" if partition else "") + "; materialize it first")
    return facts


def cell(value: Any) -> str:
    """How a query result cell is printed in the card (and compared by tests)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "_(none)_"
    head = "| " + " | ".join(map(str, frame.columns)) + " |\n|" + "---|" * len(frame.columns)
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, *body])


def _size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                        (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")):
        if n < limit:
            return name
    return "10M<n<100M"


def _licence(sources: pd.DataFrame) -> str:
    stated = {str(v) for v in sources.get("license", pd.Series(dtype=str)) if v and v != NOT_STATED}
    if len(stated) == 1 and len(sources) and (sources["license"] != NOT_STATED).all():
        return stated.pop().lower()
    return "other" if stated else "unknown"


def card_header(facts: list[CardFact], splits: dict[str, int], pretty_name: str) -> dict[str, Any]:
    """The YAML header the hub reads: licence, size, configs (data files per split), tags."""
    by_key = {f.key: f.frame for f in facts}
    return {
        "pretty_name": pretty_name,
        "license": _licence(by_key.get("sources", pd.DataFrame())),
        "task_categories": ["feature-extraction", "image-feature-extraction"],
        "tags": ["gme", "multimodal-retrieval", "embedding", "infonce", "gme_data"],
        "size_categories": [_size_category(sum(splits.values()))],
        "configs": hub_configs(splits),
        "dataset_info": {"splits": [{"name": s, "num_examples": int(n)} for s, n in splits.items()]},
    }


def render_card(facts: list[CardFact], splits: dict[str, int], pretty_name: str, lineage_path: str,
                columns: Sequence[str] = ()) -> str:
    header = yaml.safe_dump(card_header(facts, splits, pretty_name), sort_keys=False, allow_unicode=True)
    exported_at = utc_now().isoformat(timespec="seconds")
    lines = ["---", header.rstrip(), "---", "", f"# {pretty_name}", "",
             "Made by gme_data (GME-style universal multimodal retrieval data). Every table below is the "
             "result of the SQL query under it, run on the lineage store "
             f"(`duckdb {lineage_path}`) when the dataset was exported ({exported_at} UTC); nothing here is "
             "typed by hand.", "",
             "## Files", "",
             *(f"- `{s}`: {n} rows, `data/{s}-00000-of-00001.parquet`" for s, n in splits.items()),
             "", "`datasets.load_dataset(\"parquet\", data_dir=\"data\")` or `datasets.load_from_disk(\"hf_disk\")`; "
             "image columns are `datasets.Image` features (bytes embedded).", ""]
    if columns:
        lines += ["Columns: " + ", ".join(f"`{c}`" for c in columns) + ".", ""]
    for f in facts:
        lines += [f"## {f.title}", ""]
        if f.note:
            lines += [f.note, ""]
        lines += [markdown_table(f.frame), "", "```sql", f.sql, "```", ""]
    return "\n".join(lines)


def write_data_card(out_dir: str | Path, store: Any, splits: dict[str, int], *, asset_key: str = "training_set",
                    partition: str | None = None, pretty_name: str = "gme_data training set",
                    lineage_path: str = "lineage.duckdb", columns: Sequence[str] = ()) -> Path:
    """Build the facts from lineage and write ``<out_dir>/README.md``; returns its path."""
    facts = build_card_facts(store, asset_key, partition)
    text = render_card(facts, splits, pretty_name, lineage_path, columns)
    path = Path(out_dir) / "README.md"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path
