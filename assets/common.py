"""What every stage does after its library call: lineage, quality gate, report, metadata."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd

from dagster_project.data_versions import data_version
from dagster_project.io_manager import ParquetIOManager
from dagster_project.report_server import report_url
from dagster_project.resources import LineageResource, WorkbenchResource
from gme_data.lineage import StageOutput, trace_sql
from gme_data.storage_names import code_fence, sql_literal
from quality.gates import GateResult, data_docs_index, run_gate
from quality.markdown import md_cell
from quality.report import StageSections, build_sections, render_markdown, write_report
from quality.stage_view import StageView

GATE = "quality_gate"
DRIFT = "drift"
OWNERS = ["team:gme-data"]


def gate_spec(asset_name: str, description: str) -> dg.AssetCheckSpec:
    """The blocking check every asset carries: its Great Expectations suite."""
    return dg.AssetCheckSpec(GATE, asset=asset_name, blocking=True,
                             description=f"Great Expectations suite quality/suites/{asset_name}.json: {description}")


def drift_spec(asset_name: str) -> dg.AssetCheckSpec:
    """The non-blocking check that warns when this run drifts from the previous run of the partition."""
    return dg.AssetCheckSpec(DRIFT, asset=asset_name, blocking=False,
                             description="Kept fraction, drop rate per reason and filter-score distributions "
                                         "against the previous run of the same partition (tolerance: "
                                         "GME_DATA_DRIFT_TOLERANCE, GME_DATA_DRIFT_KS_TOLERANCE)")


def domains_of(df: pd.DataFrame, candidates: pd.DataFrame, key: str = "pos_id") -> pd.Series | None:
    """Each row's candidate domain (via ``key`` -> ``candidates.id``), for the report's kept-by-domain bars."""
    if key not in df.columns or not {"id", "domain"} <= set(candidates.columns):
        return None
    return df[key].map(candidates.drop_duplicates("id").set_index("id")["domain"])


def md_table(df: pd.DataFrame, max_rows: int = 20, max_chars: int = 80) -> str:
    """A small DataFrame as markdown (long cells cut; cell text escaped so it renders as plain text)."""
    if df.empty:
        return "_(empty)_"
    view = df.head(max_rows)
    header = "| " + " | ".join(md_cell(c) for c in view.columns) + " |\n|" + "---|" * len(view.columns) + "\n"
    body = "\n".join("| " + " | ".join(md_cell(v, max_chars) for v in row) + " |"
                     for row in view.astype(str).values.tolist())
    return header + body


def drops_table(output: StageOutput) -> str:
    counts = output.drop_counts()
    if not counts:
        return "_nothing dropped_"
    return md_table(pd.DataFrame({"reason": list(counts), "dropped": list(counts.values())}))


def thumbnail_data_url(path: str | None, size: int = 96) -> str | None:
    """A small inline JPEG of an image file, for galleries in the UI."""
    if not path or not Path(path).is_file():
        return None
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        im.thumbnail((size, size))
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=80)
    return _data_url(buf.getvalue())


def image_data_url(path: str | Path) -> str:
    """A PNG/JPEG file inlined as a data URL (plots in markdown metadata)."""
    return _data_url(Path(path).read_bytes())


def _data_url(data: bytes) -> str:
    mime = "image/png" if data[:4] == b"\x89PNG" else "image/jpeg"
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def gallery_md(rows: list[dict[str, Any]], image_key: str, text_key: str, limit: int = 8) -> str:
    """Markdown gallery: inline thumbnails beside their text."""
    lines = ["| image | text |", "|---|---|"]
    for r in rows[:limit]:
        url = thumbnail_data_url(r.get(image_key))
        img = f"![img]({url})" if url else "—"
        txt = md_cell(r.get(text_key) or "", 160)
        lines.append(f"| {img} | {txt} |")
    return "\n".join(lines)


def finish_stage(
    context: dg.AssetExecutionContext,
    df: pd.DataFrame,
    output: StageOutput,
    *,
    io_manager: ParquetIOManager,
    lineage: LineageResource,
    workbench: WorkbenchResource,
    gate_params: dict[str, Any],
    derive: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    metadata: dict[str, Any] | None = None,
    report_extra: dict[str, Any] | None = None,
    value: Any = None,
    thresholds: dict[str, float | None] | None = None,
    inputs: pd.DataFrame | None = None,
    domains: pd.Series | None = None,
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    """Write lineage, run the gate, render the report, then yield the output and the check result.

    The asset is the one ``context`` materializes; ``io_manager``, ``lineage`` and ``workbench`` are
    the resources injected into it (so a configured storage base, lineage store or home is followed).
    The report carries plots (each filter score against ``thresholds``, lengths, drops, kept rows by
    combination and by ``domains``), examples per drop reason (looked up in ``inputs``, the rows the
    stage judged), drift against the previous run and a link to the gate's GX Data Docs page.
    When the gate fails, the table is quarantined (under the injected IO manager's base) instead of
    materialized, the check result is recorded and the step fails with the failed expectations as its message.
    """
    if not isinstance(io_manager, ParquetIOManager):
        raise TypeError(f"finish_stage needs the ParquetIOManager as io_manager; got {type(io_manager).__name__}")
    asset_name = context.asset_key.to_user_string()
    partition = context.partition_key if context.has_partition_key else None
    gate_df = derive(df.copy()) if derive is not None else df
    reports_root = workbench.reports_dir()
    result: GateResult = run_gate(gate_df, asset_name, gate_params, data_docs_root=reports_root,
                                  run_name=f"{context.run_id}__{partition or 'all'}")
    io = io_manager
    # One run at a time per partition from its lineage write until its shard (or quarantine) is in place,
    # so two runs of one partition cannot leave lineage of one beside the table of the other.
    with io.lock(asset_name, partition, log=context.log.info):
        try:
            yield from _commit_stage(context, asset_name, partition, df, output, lineage, reports_root, result, io,
                                     metadata, report_extra, value, thresholds, inputs, domains)
        finally:
            io.discard_staged(asset_name, partition, context.run_id)  # a no-op once the IO manager took it


def _commit_stage(context: dg.AssetExecutionContext, asset_name: str, partition: str | None, df: pd.DataFrame,
                  output: StageOutput, lineage: LineageResource, reports_root: Path, result: GateResult, io: ParquetIOManager,
                  metadata: dict[str, Any] | None, report_extra: dict[str, Any] | None, value: Any,
                  thresholds: dict[str, float | None] | None, inputs: pd.DataFrame | None,
                  domains: pd.Series | None) -> Iterator[dg.Output | dg.AssetCheckResult]:
    run_id = context.run_id
    # the new shard is written (under a temporary name) before lineage changes: a table that cannot be
    # written fails the step with lineage and the live shard still from the same, earlier run
    if result.success and value is None and isinstance(df, pd.DataFrame):
        io.stage(asset_name, partition, run_id, df)
    view = StageView(asset_name, df if isinstance(df, pd.DataFrame) else pd.DataFrame(), output,
                     thresholds or {}, inputs, domains)
    try:
        sections = build_sections(view, reports_root, run_id, partition, result.data_docs)
    except Exception as e:  # noqa: BLE001 - a broken picture must not lose the stage's data
        context.log.warning(f"quality report sections of {asset_name} not drawn: {type(e).__name__}: {e}")
        sections = StageSections()
    drift = sections.drift
    drift_flagged = bool(drift is not None and drift.flagged)
    store = lineage.store()
    # the gate's verdict goes into lineage too: assets.metadata ->> 'gate_passed' / 'quality_gate'
    counts = store.write_stage(asset_name, partition, run_id, output,
                               metadata={**(report_extra or {}), "gate_passed": result.success,
                                         "quality_gate": result.headline(), "drift_flagged": drift_flagged})
    report = write_report(result, df, reports_root, asset_name, run_id, partition, report_extra, sections,
                          headline=_headline_numbers(view, metadata))
    overview_url = report_url(report.parent / "index.html")
    example_id = next((r.record_id for r in output.records if r.status == "kept"), None)
    md: dict[str, Any] = {
        "dagster/row_count": len(df),
        "records_kept": counts["n_kept"],
        "records_dropped": counts["n_dropped"],
        "drops_by_reason": dg.MetadataValue.md(drops_table(output)),
        "quality_report": dg.MetadataValue.url(report_url(report)),
        "quality_gate": dg.MetadataValue.text(result.headline()),
        "run_overview": dg.MetadataValue.url(overview_url),
        "quality_plots": len(sections.plots),
        "drift": dg.MetadataValue.text(drift.headline() if drift is not None else "not computed"),
        "drift_flagged": drift_flagged,
        "lineage_store": dg.MetadataValue.path(str(store.path)),
        "lineage_drops_query": dg.MetadataValue.md(drops_query_md(asset_name, partition)),
        "preview": dg.MetadataValue.md(md_table(df.drop(columns=[c for c in df.columns if c.startswith("_")]))),
    }
    if example_id:
        shown = example_id.replace("`", "'")
        md["lineage_trace_example"] = dg.MetadataValue.md(
            f"Where did `{shown}` come from?\n{code_fence(trace_sql(example_id), 'sql')}")
    md.update(metadata or {})
    check_md: dict[str, Any] = {
        "expectations": dg.MetadataValue.md(render_markdown(result)),
        "failed_expectations": len(result.failed),
        "evaluated_expectations": len(result.outcomes),
        "rows_validated": result.n_rows,
        "quality_report": dg.MetadataValue.url(report_url(report)),
        "quality_reports_of_run": dg.MetadataValue.url(overview_url),
    }
    if result.data_docs is not None:
        check_md["data_docs"] = dg.MetadataValue.url(report_url(result.data_docs))
        check_md["data_docs_index"] = dg.MetadataValue.url(report_url(data_docs_index(reports_root)))
    for o in result.failed[:10]:
        check_md[f"failed: {o.expectation} {o.column or ''}".strip()] = dg.MetadataValue.json(
            {"unexpected_count": o.unexpected_count, "unexpected_percent": o.unexpected_percent,
             "observed": o.observed_value, "examples": o.examples, "error": o.error}
        )
    check = dg.AssetCheckResult(
        check_name=GATE, passed=result.success, severity=dg.AssetCheckSeverity.ERROR,
        metadata=check_md, description=result.headline()[:1000],
    )
    drift_check = None
    if dg.AssetCheckKey(dg.AssetKey(asset_name), DRIFT) in (context.selected_asset_check_keys or set()):
        drift_check = dg.AssetCheckResult(
            check_name=DRIFT, passed=not drift_flagged, severity=dg.AssetCheckSeverity.WARN,
            description=(drift.headline() if drift is not None else "not computed")[:1000],
            metadata={"previous_run": drift.previous_run or "-" if drift is not None else "-",
                      "changes_beyond_tolerance": len(drift.flagged) if drift is not None else 0,
                      "quality_report": dg.MetadataValue.url(report_url(report))})
    if result.success:
        out = df if value is None else value
        # the content hash: identical rows keep downstream in sync, changed rows mark it stale
        yield dg.Output(out, metadata=md, data_version=data_version(out))  # the IO manager writes the shard here
        yield check
        if drift_check is not None:
            yield drift_check
        return
    # A rejected table is not a materialization: record the check, set the table aside, fail the step.
    where = f"{asset_name}[{partition or '-'}]"
    quarantined = io.quarantine(asset_name, partition, df) if isinstance(df, pd.DataFrame) else None
    context.log.error(f"quality gate failed for {where}: {result.headline()}"
                      + (f"; table quarantined at {quarantined}" if quarantined else ""))
    yield check
    if drift_check is not None:
        yield drift_check
    failed = "; ".join(o.summary() for o in result.failed[:5])
    raise dg.Failure(
        description=f"quality gate failed for {where}: {failed}"[:2000],
        metadata={"quality_report": dg.MetadataValue.url(report_url(report)),
                  "quarantined_table": dg.MetadataValue.path(quarantined or "-"),
                  "rows": len(df), "failed_expectations": len(result.failed)},
        allow_retries=False,
    )


def drops_query_md(asset_name: str, partition: str | None) -> str:
    """The ready-to-paste DuckDB query for a partition's drops (names quoted as SQL literals)."""
    sql = (f"SELECT reason, count(*) FROM records WHERE asset_key = {sql_literal(asset_name)} "
           f"AND partition = {sql_literal(partition or '__all__')} AND status = 'dropped' "
           "GROUP BY 1 ORDER BY 2 DESC;")
    return code_fence(sql, "sql")


def _headline_numbers(view: StageView, metadata: dict[str, Any] | None) -> dict[str, Any]:
    """Rows in/out, kept fraction, the top drop reason and the stage's own numeric metadata."""
    out: dict[str, Any] = {"rows_in": view.n_in, "rows_out": view.n_kept, "kept_fraction": view.kept_fraction}
    drops = view.drop_counts()
    if drops:
        reason, n = next(iter(drops.items()))
        out["top drop reason"] = f"{reason} ({n})"
    for key, v in (metadata or {}).items():
        if isinstance(v, (int, float)) and not isinstance(v, bool) and len(out) < 8:
            out[key] = v
    return out


def as_json(obj: Any) -> dg.MetadataValue:
    return dg.MetadataValue.json(json.loads(json.dumps(obj, default=str)))
