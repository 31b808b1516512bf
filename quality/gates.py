"""Run an expectation suite over a DataFrame and summarise what failed, on how many rows, with examples.

Suites are GE 1.x JSON (``{"name", "expectations": [{"type", "kwargs", "meta"}]}``) kept in
``quality/suites/``. A kwarg value ``"${param}"`` is replaced by ``params["param"]`` so bounds
follow the asset's config (row-count bounds, kept-fraction bounds, ...). An expectation whose
``meta.requires`` names a param that is ``None`` is skipped (e.g. no upper bound configured).
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pandas as pd

from gme_data.errors import InvalidInputError

SUITES_DIR = Path(__file__).parent / "suites"
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
logging.getLogger("great_expectations").setLevel(logging.WARNING)

_CONTEXT: Any = None
_DOCS_CONTEXTS: dict[str, Any] = {}
#: Data Docs of every validation go to ``<reports>/data_docs`` (GX's own site, index over all runs),
#: their results to ``<reports>/_gx/validations`` so the index lists validations of every process.
DATA_DOCS = "data_docs"
DOCS_SITE = "gme_data_reports"


@dataclass
class ExpectationOutcome:
    """One expectation's verdict, in the words an operator needs."""

    expectation: str
    column: str | None
    success: bool
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    observed_value: Any = None
    examples: list[dict[str, Any]] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    description: str | None = None

    def unexpected_text(self, digits: int = 1) -> str:
        """``"3 (12.5%)"``; the percentage is left out when GE gives none (an empty table)."""
        if self.unexpected_count is None:
            return ""
        pct = "" if self.unexpected_percent is None else f" ({self.unexpected_percent:.{digits}f}%)"
        return f"{self.unexpected_count}{pct}"

    def summary(self) -> str:
        where = f" on `{self.column}`" if self.column else ""
        if self.error:
            return f"{self.expectation}{where}: error {self.error}"
        if self.unexpected_count:
            return f"{self.expectation}{where}: {self.unexpected_text()} rows unexpected"
        if self.observed_value is not None:
            return f"{self.expectation}{where}: observed {self.observed_value}"
        return f"{self.expectation}{where}"


@dataclass
class GateResult:
    """The result of one suite on one table."""

    suite: str
    success: bool
    n_rows: int
    outcomes: list[ExpectationOutcome]
    data_docs: Path | None = None  # GX Data Docs page of this validation, when built

    @property
    def failed(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success]

    def headline(self) -> str:
        if self.success:
            return f"{self.suite}: all {len(self.outcomes)} expectations passed on {self.n_rows} rows"
        return f"{self.suite}: {len(self.failed)}/{len(self.outcomes)} expectations failed — " + "; ".join(
            o.summary() for o in self.failed
        )


def _new_context() -> Any:
    import great_expectations as gx

    ctx = gx.get_context(mode="ephemeral")
    try:
        from great_expectations.data_context.types.base import ProgressBarsConfig

        ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    except Exception:  # noqa: BLE001 - cosmetic only
        pass
    return ctx


def _context() -> Any:
    global _CONTEXT
    if _CONTEXT is None:
        _CONTEXT = _new_context()
    return _CONTEXT


def _docs_context(reports_root: Path) -> Any:
    """An ephemeral context whose validation results and Data Docs site live under ``reports_root``."""
    key = str(Path(reports_root).resolve())
    if key not in _DOCS_CONTEXTS:
        ctx = _new_context()
        ctx.add_store("gme_data_validations", {
            "class_name": "ValidationResultsStore",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                              "base_directory": str(Path(key) / "_gx" / "validations")}})
        ctx.validation_results_store_name = "gme_data_validations"
        ctx.add_data_docs_site(DOCS_SITE, {
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                              "base_directory": str(Path(key) / DATA_DOCS)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"}})
        _DOCS_CONTEXTS[key] = ctx
    return _DOCS_CONTEXTS[key]


def data_docs_index(reports_root: Path) -> Path:
    """The index page of the Data Docs site (every validation the gates ran under ``reports_root``)."""
    return Path(reports_root) / DATA_DOCS / "index.html"


def _substitute(value: Any, params: dict[str, Any], suite: str) -> Any:
    if isinstance(value, str) and value.startswith("${") and value.endswith("}"):
        key = value[2:-1]
        if key not in params:
            raise InvalidInputError(f"quality suite {suite}: parameter {key!r} was not supplied")
        return params[key]
    if isinstance(value, dict):
        return {k: _substitute(v, params, suite) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, params, suite) for v in value]
    return value


def load_suite(name: str, params: dict[str, Any] | None = None) -> Any:
    """Load ``quality/suites/<name>.json`` as a GE ``ExpectationSuite`` with params substituted."""
    import great_expectations as gx

    path = SUITES_DIR / f"{name}.json"
    if not path.is_file():
        raise InvalidInputError(f"quality suite {name!r} not found at {path}")
    raw = json.loads(path.read_text())
    params = params or {}
    expectations = []
    for exp in raw.get("expectations", []):
        needs = exp.get("meta", {}).get("requires", [])
        if any(params.get(k) is None for k in needs):
            continue
        expectations.append({**exp, "kwargs": _substitute(exp.get("kwargs", {}), params, name)})
    return gx.ExpectationSuite(name=raw.get("name", name), expectations=expectations)


def _examples(df: pd.DataFrame, result: dict[str, Any], column: str | None, id_column: str) -> list[dict]:
    idx = result.get("unexpected_index_list") or []
    rows: list[dict[str, Any]] = []
    for i in idx[:5]:
        if isinstance(i, dict):  # GE may report {column: value} dicts
            rows.append({k: _plain(v) for k, v in i.items()})
            continue
        try:
            rec = df.loc[i]
        except KeyError:
            continue
        ex = {}
        if id_column in df.columns:
            ex[id_column] = _plain(rec[id_column])
        if column and column in df.columns:
            ex[column] = _plain(rec[column])
        rows.append(ex)
    if not rows and result.get("partial_unexpected_list"):
        rows = [{column or "value": _plain(v)} for v in result["partial_unexpected_list"][:5]]
    return rows


def _plain(v: Any) -> Any:
    if hasattr(v, "item") and not isinstance(v, (list, dict, str)):
        try:
            return v.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(v, float) and v != v:
        return None
    if isinstance(v, str) and len(v) > 160:
        return v[:157] + "..."
    return v if isinstance(v, (int, float, str, bool, type(None))) else str(v)[:160]


def _observed(v: Any) -> Any:
    """An observed value as plain data: short lists of scalars stay lists (shown as lists, not reprs)."""
    if isinstance(v, (list, tuple)) and len(v) <= 50 and all(isinstance(x, (str, int, float, bool)) for x in v):
        return [_plain(x) for x in v]
    return _plain(v)


def run_gate(df: pd.DataFrame, suite_name: str, params: dict[str, Any] | None = None,
             id_column: str = "id", data_docs_root: Path | None = None, run_name: str | None = None) -> GateResult:
    """Validate ``df`` against the named suite; never raises on a failed expectation.

    With ``data_docs_root`` (the reports folder) the validation runs as a GX checkpoint that also
    updates Great Expectations' own Data Docs site there, named by ``run_name``; the page of this
    validation is :attr:`GateResult.data_docs`.
    """
    suite = load_suite(suite_name, params)
    ctx = _context() if data_docs_root is None else _docs_context(data_docs_root)
    key = f"gate_{suite_name}"
    try:
        ds = ctx.data_sources.get(key)
    except (KeyError, ValueError, Exception):  # noqa: BLE001 - GE raises various lookup errors
        ds = ctx.data_sources.add_pandas(key)
    try:
        asset = ds.get_asset("frame")
    except LookupError:
        asset = ds.add_dataframe_asset("frame")
    try:
        batch_def = asset.get_batch_definition("whole")
    except (KeyError, ValueError, Exception):  # noqa: BLE001
        batch_def = asset.add_batch_definition_whole_dataframe("whole")
    frame = df.reset_index(drop=True)
    # GE cannot hash list-valued cells; validate their string form.
    for col in frame.columns:
        if frame[col].map(lambda v: isinstance(v, (list, dict)) or hasattr(v, "tolist")).any():
            frame[col] = frame[col].map(lambda v: json.dumps(v.tolist() if hasattr(v, "tolist") else v,
                                                              default=str))
    result_format = {"result_format": "COMPLETE", "include_unexpected_rows": False}
    docs_page = None
    if data_docs_root is None:
        batch = batch_def.get_batch(batch_parameters={"dataframe": frame})
        res = batch.validate(suite, result_format=result_format)
    else:
        res, docs_page = _validate_with_docs(ctx, batch_def, suite, frame, result_format, run_name or suite_name)
    outcomes = []
    for er in res.results:
        cfg = er.expectation_config
        r = er.result or {}
        column = cfg.kwargs.get("column")
        err = None
        if er.exception_info and er.exception_info.get("raised_exception"):
            err = str(er.exception_info.get("exception_message"))[:300]
        outcomes.append(
            ExpectationOutcome(
                expectation=cfg.type,
                column=column,
                success=bool(er.success),
                unexpected_count=r.get("unexpected_count"),
                unexpected_percent=r.get("unexpected_percent"),
                observed_value=_observed(r.get("observed_value")),
                examples=[] if er.success else _examples(frame, r, column, id_column),
                kwargs={k: _observed(v) for k, v in cfg.kwargs.items() if k not in ("batch_id",)},
                error=err,
                description=(cfg.meta or {}).get("description"),
            )
        )
    return GateResult(suite=suite_name, success=bool(res.success), n_rows=len(frame), outcomes=outcomes,
                      data_docs=docs_page)


def _validate_with_docs(ctx: Any, batch_def: Any, suite: Any, frame: pd.DataFrame, result_format: dict,
                        run_name: str) -> tuple[Any, Path | None]:
    """Validate through a checkpoint whose action rebuilds the Data Docs site; return the result and page."""
    import great_expectations as gx
    from great_expectations.checkpoint import UpdateDataDocsAction
    from great_expectations.core.run_identifier import RunIdentifier

    suite = ctx.suites.add_or_update(suite)
    vd = ctx.validation_definitions.add_or_update(gx.ValidationDefinition(name=suite.name, data=batch_def,
                                                                          suite=suite))
    checkpoint = ctx.checkpoints.add_or_update(gx.Checkpoint(
        name=f"gate_{suite.name}", validation_definitions=[vd], result_format=result_format,
        actions=[UpdateDataDocsAction(name="data_docs", site_names=[DOCS_SITE])]))
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", run_name)[:120]
    run = checkpoint.run(batch_parameters={"dataframe": frame}, run_id=RunIdentifier(run_name=safe))
    identifier, res = next(iter(run.run_results.items()))
    page = None
    for site in ctx.get_docs_sites_urls(resource_identifier=identifier, site_name=DOCS_SITE):
        url = site.get("site_url") or ""
        if url.startswith("file://"):
            page = Path(unquote(url[len("file://"):]))
    return res, page
