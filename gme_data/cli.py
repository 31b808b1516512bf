"""The ``gme-data`` command line.

Subcommands register themselves in :data:`COMMANDS` (name -> (add_arguments, run)); ``main`` builds
one argparse parser from them, so new subcommands are one function pair each.

``gme-data eval``::

    gme-data eval --model M --data DIR --out OUT                 # one dataset in the local layout
    gme-data eval --model M --suite local|umrb|umrb-partial --out OUT
    gme-data eval --model M --tasks T->I IT->T --out OUT          # UMRB datasets of those tasks
    gme-data eval --list [--suite NAME]                           # print the registry

``--model`` goes to :func:`gme_data.load_embedder` ("" or "default" = the offline default). OUT gets
``results.json`` (metric means keyed by metric name, e.g. ``ndcg@10``, ``recall@5``, then per task,
category and dataset), ``report.md`` and ``scores.png``; ``--db`` adds a DuckDB table. Exit status:
0 when every selected dataset was evaluated, 1 when some were unavailable (reported), 2 on usage
errors or when nothing could be evaluated.

``gme-data lineage``::

    gme-data lineage compact [--from URL] [--to FILE]     # Parquet lineage -> DuckDB file (idempotent)
    gme-data lineage trace RECORD_ID [--backend parquet --from URL | --db FILE]
    gme-data lineage views [--from URL]                   # DuckDB views over the Parquet files, as SQL

``gme-data generate``::

    gme-data generate --candidates C.parquet --estimate [--set model=gpt-4o-mini price_prompt_per_1k=...]
    gme-data generate --candidates C.parquet --out Q.parquet [--set max_budget_usd=5 ...]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence

from gme_data.errors import GmeDataError, InvalidInputError

AddArgs = Callable[[argparse.ArgumentParser], None]
Run = Callable[[argparse.Namespace], int]


def _split(values: Sequence[str] | None) -> list[str] | None:
    if not values:
        return None
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def _eval_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="default",
                   help="embedder for gme_data.load_embedder ('' or 'default' = offline default)")
    p.add_argument("--model-option", action="append", default=[], metavar="KEY=VALUE",
                   help="option for load_embedder, e.g. ocr=false or position_mode=mrope (repeatable; "
                        "values parsed as JSON when possible)")
    sel = p.add_argument_group("datasets (one of)")
    sel.add_argument("--data", action="append", metavar="DIR", help="a dataset in the local layout (repeatable)")
    sel.add_argument("--suite", help="umrb | umrb-partial | local")
    sel.add_argument("--tasks", nargs="+", metavar="TASK", help="e.g. T->T T->I IT->T (or t2i, it2t; commas ok)")
    sel.add_argument("--categories", nargs="+", metavar="CAT", help="single-modal, cross-modal, fused-modal, visual-document")
    sel.add_argument("--datasets", nargs="+", metavar="SLUG", help="registry slugs, e.g. scifact mscoco_t2i")
    p.add_argument("--out", help="output folder (results.json, report.md, scores.png, datasets/)")
    p.add_argument("--data-root", help="folder holding local copies DATA_ROOT/<slug> (default $GME_DATA_UMRB_ROOT "
                                       "or <home>/umrb); the local suite is built in DATA_ROOT/local")
    p.add_argument("--cache-dir", help="corpus-embedding cache (default <home>/cache/eval)")
    p.add_argument("--db", help="also write the results to this DuckDB file (table umrb_results)")
    p.add_argument("--compare", nargs="+", default=[], metavar="RUN_OR_MODEL",
                   help="earlier results.json / run folder, or another model to evaluate, shown side by side")
    p.add_argument("--label", nargs="+", help="display names for the run (and the compared runs)")
    p.add_argument("--metrics", nargs="+", help="metrics to compute (default: ndcg@5/10, recall@1/5/10/100, "
                                                "hit@1/5/10, mrr@10, map@10, precision@1/5)")
    p.add_argument("--top-k", type=int, default=100, help="candidates retrieved per query (default 100)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", help="cpu | cuda | cuda:N (default: cuda when available)")
    p.add_argument("--no-resume", action="store_true", help="re-evaluate datasets that already have results")
    p.add_argument("--fail-fast", action="store_true", help="stop at the first unavailable dataset")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--list", action="store_true", help="list the registry (or --suite) and exit")


def _options(pairs: Sequence[str]) -> dict[str, object]:
    out: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidInputError(f"--model-option expects KEY=VALUE, got {pair!r}")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def _list(args: argparse.Namespace) -> int:
    from gme_data.evaluation.registry import PARTIAL, PARTIAL_LABEL, select

    specs = select(args.suite, tasks=_split(args.tasks), categories=_split(args.categories),
                   names=_split(args.datasets))
    print(f"{'slug':28} {'task':7} {'category':13} {'metric':10} {'partial':7} source")
    for s in specs:
        print(f"{s.slug:28} {s.task:7} {s.category:13} {s.metric:10} {'yes' if s.slug in PARTIAL else '':7} "
              f"{s.source}:{s.hub_id or '-'}" + (f"@{s.revision[:12]}" if s.revision else ""))
    print(f"partial: {PARTIAL_LABEL}")
    print(f"{len(specs)} dataset(s)")
    return 0


def _eval_run(args: argparse.Namespace) -> int:
    if args.list:
        return _list(args)
    if not args.out:
        print("gme-data eval: --out is required", file=sys.stderr)
        return 2
    from gme_data.evaluation import metrics as M
    from gme_data.evaluation.api import umrb_eval

    result, paths = umrb_eval(
        args.model, args.out, suite=args.suite, tasks=_split(args.tasks), categories=_split(args.categories),
        datasets=_split(args.datasets), data_dirs=args.data, data_root=args.data_root, cache_dir=args.cache_dir,
        db_path=args.db, compare=args.compare, labels=args.label,
        metrics=_split(args.metrics) or M.DEFAULT_METRICS, top_k=args.top_k, batch_size=args.batch_size,
        device=args.device, resume=not args.no_resume, show_progress=not args.quiet,
        on_error="raise" if args.fail_fast else "skip", embedder_options=_options(args.model_option))
    print(f"model {result.model} on {result.suite}: {len(result.datasets)} dataset(s), "
          f"average {result.overall:.2f}" if result.datasets else f"model {result.model}: nothing evaluated")
    for task, score in result.tasks.items():
        print(f"  {task:7} {score:6.2f}")
    for slug, reason in result.failed.items():
        print(f"  unavailable: {slug}: {reason}", file=sys.stderr)
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    if not result.datasets:
        return 2
    return 1 if result.failed else 0


def _lineage_args(p: argparse.ArgumentParser) -> None:
    actions = p.add_subparsers(dest="lineage_action", metavar="ACTION", required=True)
    compact = actions.add_parser("compact", help="load Parquet lineage into a DuckDB lineage file (idempotent)")
    compact.add_argument("--from", dest="source", default="",
                         help="Parquet lineage root (default $GME_DATA_LINEAGE_URL or <storage URL>/_lineage)")
    compact.add_argument("--to", dest="target", default="",
                         help="DuckDB file (default $GME_DATA_LINEAGE_DB or <home>/lineage.duckdb)")
    trace = actions.add_parser("trace", help="print where a record came from (every ancestor edge)")
    trace.add_argument("record_id")
    trace.add_argument("--backend", default="", help="duckdb | parquet (default: from --db / --from, else $GME_DATA_LINEAGE_BACKEND or duckdb)")
    trace.add_argument("--from", dest="source", default="", help="Parquet lineage root (parquet backend)")
    trace.add_argument("--db", default="", help="DuckDB lineage file (duckdb backend)")
    views = actions.add_parser("views", help="print DuckDB SQL creating the lineage views over Parquet lineage")
    views.add_argument("--from", dest="source", default="", help="Parquet lineage root")


def _lineage_run(args: argparse.Namespace) -> int:
    from gme_data import settings
    from gme_data.lineage_backend import open_lineage_store, parquet_lineage_url

    source = parquet_lineage_url(args.source)
    if args.lineage_action == "views":
        from gme_data.lineage_parquet import views_sql

        print(views_sql(source))
        return 0
    if args.lineage_action == "compact":
        from gme_data.lineage_compact import consolidate_into

        target = args.target or str(settings.lineage_path())
        counts = consolidate_into(source, target)
        print(f"{source} -> {target}: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
        return 0
    backend = args.backend or ("duckdb" if args.db else "parquet" if args.source else "")
    store = open_lineage_store(backend, path=args.db, url=args.source)
    table = store.trace(args.record_id)
    if table.empty:
        print(f"no lineage edges for {args.record_id!r} in {store.path}", file=sys.stderr)
        return 1
    print(table.to_string(index=False, max_colwidth=60))
    return 0


def _generate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--candidates", required=True, help="candidates table (.parquet, the candidates asset's columns)")
    p.add_argument("--estimate", action="store_true",
                   help="only estimate prompts, tokens, worst-case cost and cache coverage; send nothing")
    p.add_argument("--out", default="", help="generate: write the kept queries here (.parquet)")
    p.add_argument("--cache", default="", help="response cache (DuckDB); default <GME_DATA_HOME>/cache/llm_responses.duckdb")
    p.add_argument("--json", action="store_true", help="print the estimate / run report as JSON")
    p.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE",
                   help="generation config fields, e.g. backend=openai model=gpt-4o-mini styles=t2t "
                        "price_prompt_per_1k=0.00015 max_budget_usd=5")


def _config_values(pairs: Sequence[str], config: object) -> dict[str, object]:
    """``--set FIELD=VALUE`` pairs converted to the field's type (bool: true/false/1/0)."""
    out: dict[str, object] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not hasattr(config, key) or key.startswith("_"):
            raise InvalidInputError(f"--set expects FIELD=VALUE with a generation config field, got {pair!r}")
        kind = type(getattr(config, key))
        try:
            if kind is bool:
                if value.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(value)
                out[key] = value.lower() in ("true", "1")
            else:
                out[key] = kind(value)
        except ValueError:
            raise InvalidInputError(f"--set {key}={value!r}: not a {kind.__name__}") from None
    return out


def _generate_run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import pandas as pd

    from gme_data.generation import GenerationConfig, generate_queries
    from gme_data.generation.estimate import estimate_generation
    from gme_data.settings import cache_dir

    path = Path(args.candidates)
    if not path.is_file():
        raise InvalidInputError(f"--candidates {path}: no such file")
    try:
        candidates = pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"--candidates {path}: not a readable Parquet file ({exc})") from None
    config = GenerationConfig.from_env()
    config = config.with_overrides(**_config_values(args.set, config))
    cache = args.cache or config.cache_path or str(cache_dir() / "llm_responses.duckdb")
    if args.estimate:
        est = estimate_generation(candidates, config, cache_path=cache)
        print(json.dumps(est.as_dict(), indent=2) if args.json else est.summary())
        if not args.json:
            print(f"  prompts per style: {est.candidates_by_style}; per template: {est.prompts_by_template}")
            print(f"  cached: {est.cached_prompts} prompts ({est.cached_prompt_tokens} + "
                  f"{est.cached_completion_tokens} tokens, ${est.cached_cost_usd:.4f} when made)")
        return 0
    if not args.out:
        raise InvalidInputError("generate: give --out FILE.parquet (or --estimate)")
    result = generate_queries(candidates, config, cache_path=cache)
    result.table.to_parquet(args.out, index=False)
    print(json.dumps(result.report.as_dict(), indent=2, default=str) if args.json else result.report.summary())
    return 0


#: name -> (add_arguments, run, help)
COMMANDS: dict[str, tuple[AddArgs, Run, str]] = {
    "eval": (_eval_args, _eval_run, "evaluate an embedder on UMRB datasets, the local suite or a local dataset"),
    "lineage": (_lineage_args, _lineage_run, "compact Parquet lineage into DuckDB, trace a record, print the views"),
    "generate": (_generate_args, _generate_run, "generate queries for a candidates table, or --estimate their cost"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gme-data", description="GME-style data-synthesis workbench")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (add_args, _run, help_text) in COMMANDS.items():
        add_args(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``gme-data``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not args.command:
        parser.print_help()
        return 2
    try:
        return COMMANDS[args.command][1](args)
    except GmeDataError as exc:
        print(f"gme-data {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # pragma: no cover
        print("interrupted; finished datasets are kept and skipped on the next run", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["COMMANDS", "build_parser", "main"]
