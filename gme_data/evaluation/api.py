"""One call from a model to a finished report: :func:`umrb_eval` (what the CLI and the asset use)."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gme_data.errors import InvalidInputError
from gme_data.evaluation import metrics as M
from gme_data.evaluation.loaders import default_data_root, load_local
from gme_data.evaluation.registry import DatasetSpec, select
from gme_data.evaluation.report import load_results, write_reports
from gme_data.evaluation.runner import SuiteResult, _safe, run_suite, spec_for_local

log = logging.getLogger(__name__)

DEFAULT_MODEL_NAMES = ("", "default", "offline", None)


def resolve_embedder(model: Any, device: str | None = None, **options: Any) -> Any:
    """An embedder object as is, or ``gme_data.load_embedder(name)`` ("" / "default" = offline default)."""
    if model is not None and not isinstance(model, str) and hasattr(model, "encode"):
        return model
    from gme_data import load_embedder

    name = None if model in DEFAULT_MODEL_NAMES else model
    return load_embedder(name, device=device, **options)


def local_suite_dir(data_root: str | Path | None = None) -> Path:
    return (Path(data_root) if data_root is not None else default_data_root()) / "local"


def ensure_local_suite(root: Path, options: dict[str, Any] | None = None) -> None:
    """Build the local suite under ``root`` when missing or of an older version (``options``: rebuild at
    those sizes); one builder at a time, as parallel partitions may ask together."""
    from filelock import FileLock

    from gme_data.evaluation.local_suite import SUITE_VERSION, build_local_suite

    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root) + ".lock", timeout=600):
        if options is None and _built_version(root) == SUITE_VERSION:
            return  # a current build, whatever its sizes
        build_local_suite(root, **(options or {}))  # returns at once when version and sizes match


def _built_version(root: Path) -> int | None:
    try:
        return int(json.loads((root / "suite.json").read_text())["params"]["version"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def select_datasets(suite: str | None = None, tasks: Sequence[str] | None = None,
                    categories: Sequence[str] | None = None, names: Sequence[str] | None = None,
                    data_dirs: Sequence[str | Path] | None = None) -> tuple[list[Any], str]:
    """Dataset references and a suite label from the CLI-style selectors."""
    if data_dirs:
        if suite or tasks or categories or names:
            raise InvalidInputError("--data cannot be combined with --suite/--tasks/--categories/--datasets")
        refs = [load_local(d) for d in data_dirs]
        label = refs[0].name if len(refs) == 1 else "local-dirs"
        return refs, label
    if not (suite or tasks or categories or names):
        raise InvalidInputError("choose datasets: --data DIR, --suite NAME, --tasks ..., --categories ... or --datasets ...")
    specs = select(suite, tasks=tasks, categories=categories, names=names)
    label = suite or "umrb"
    if tasks or categories or names:
        parts = [*(tasks or []), *(categories or []), *(names or [])]
        label = f"{label}[{','.join(parts)}]"
    return specs, label


def umrb_eval(model: Any = None, out_dir: str | Path = "umrb-eval", *, suite: str | None = None,
              tasks: Sequence[str] | None = None, categories: Sequence[str] | None = None,
              datasets: Sequence[str] | None = None, data_dirs: Sequence[str | Path] | None = None,
              data_root: str | Path | None = None, cache_dir: str | Path | None = None,
              db_path: str | Path | None = None, compare: Sequence[Any] = (), labels: Sequence[str] | None = None,
              metrics: Sequence[str] = M.DEFAULT_METRICS, top_k: int = 100, batch_size: int = 16,
              device: str | None = None, resume: bool = True, show_progress: bool = True,
              on_error: str = "skip", embedder_options: dict[str, Any] | None = None,
              local_suite_options: dict[str, Any] | None = None,
              results_dir: str | Path | None = None) -> tuple[SuiteResult, dict[str, Path]]:
    """Evaluate ``model`` and write ``results.json``, ``report.md``, ``scores.png`` (+ DuckDB) to ``out_dir``.

    ``model``: an embedder object or a name for :func:`gme_data.load_embedder`. Datasets: ``data_dirs``
    (local layout) or ``suite`` (``umrb``, ``umrb-partial``, ``local``) filtered by ``tasks``,
    ``categories``, ``datasets``. The ``local`` suite is built under ``DATA_ROOT/local`` when missing
    (or rebuilt when its version or ``local_suite_options`` differ from the existing build).
    ``compare``: earlier ``results.json`` paths / run folders, or other models (evaluated into
    ``OUT/compare-<name>``), shown beside the run in the table and chart. ``results_dir``: a
    per-dataset result store shared between runs (see :func:`run_suite`).
    """
    refs, label = select_datasets(suite, tasks, categories, datasets, data_dirs)
    root = Path(data_root) if data_root is not None else default_data_root()
    if any(isinstance(r, DatasetSpec) and r.source == "local-suite" for r in refs):
        ensure_local_suite(local_suite_dir(root), local_suite_options)
        eval_root = local_suite_dir(root)
    else:
        eval_root = root
    embedder = resolve_embedder(model, device=device, **(embedder_options or {}))
    common = dict(data_root=eval_root, cache_dir=cache_dir, metrics=metrics, top_k=top_k, batch_size=batch_size,
                  device=device, resume=resume, show_progress=show_progress, on_error=on_error,
                  results_dir=results_dir)
    result = run_suite(embedder, refs, out_dir, suite=label, **common)
    compared: list[SuiteResult] = []
    for other in compare:
        if isinstance(other, (str, Path)) and (Path(other).is_file() or (Path(other) / "results.json").is_file()):
            compared.append(load_results(other))
            continue
        emb2 = resolve_embedder(other, device=device)
        sub = Path(out_dir) / f"compare-{_safe(getattr(emb2, 'name', str(other)))}"
        res2 = run_suite(emb2, refs, sub, suite=label, **common)
        write_reports(res2, sub)
        compared.append(res2)
    paths = write_reports(result, out_dir, compare=compared, db_path=db_path, labels=labels)
    return result, paths


__all__ = ["ensure_local_suite", "local_suite_dir", "resolve_embedder", "select_datasets", "spec_for_local", "umrb_eval"]


def evaluate_beside_base(model_dir: str | Path, out_dir: Path, *, base: Any = None, cache_dir: str | Path,
                         results_dir: str | Path, embeddings_cache_dir: str | Path,
                         **selection: Any) -> tuple[SuiteResult, SuiteResult | None, dict[str, Path]]:
    """Evaluate the trained model in ``model_dir`` and, when given, the ``base`` embedder it was trained
    on, sharing one corpus-embedding cache (``cache_dir``) and per-dataset result store (``results_dir``)
    so every evaluation reuses the others' work; ``selection``: the remaining :func:`umrb_eval`
    arguments. Returns the model's result, the base's (or None) and the report paths."""
    compare = [base] if base is not None else []
    result, paths = umrb_eval(
        model_dir, out_dir, cache_dir=str(cache_dir), results_dir=str(results_dir), compare=compare,
        labels=["gme_model", "base"] if compare else ["gme_model"],
        embedder_options={"cache_dir": str(embeddings_cache_dir)}, **selection,
    )
    base_result = load_results(next(out_dir.glob("compare-*")) / "results.json") if compare else None
    return result, base_result, paths
