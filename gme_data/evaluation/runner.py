"""Run an embedder over evaluation datasets: encode, search exactly, score, aggregate, resume.

- Corpus embeddings are cached as ``.npy`` under ``CACHE/corpus/<model>/<dataset>-<hash>.npy``
  where the hash covers the model's cache key (name + settings), the dataset part and the corpus
  fingerprint (ids, texts, image identities); a second run over the same corpus does not encode it.
- Search is exact (:func:`gme_data.evaluation.search.exact_search`: torch matmul + top-k, CUDA when
  present, chunked).
- Scores: every metric in ``metrics`` (x100), the dataset's headline score (its ``metric_key``),
  means per task and per category (plain means over datasets) and the overall mean.
- Provenance beside every score: the instruction set, the dataset revision (the hub commit the
  registry pins, ``unpinned``, or ``local copy``) and the embedder's runtime profile
  (:mod:`gme_data.retrieval.gme_profiles`; ``n/a`` for embedders without one).
- Resumable: ``OUT/datasets/<slug>.json`` is written as each dataset finishes; a rerun with the same
  settings (model key, metrics, top-k, instruction, and for local copies the files' size/mtime)
  loads it instead of evaluating again. Datasets that fail to load are reported
  (``failed``) and skipped, and are retried on the next run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from gme_data.errors import GmeDataError, InvalidInputError
from gme_data.evaluation import metrics as M
from gme_data.evaluation.loaders import EvalDataset, load_local, load_spec
from gme_data.evaluation.registry import CATEGORIES, TASK_CATEGORY, TASKS, DatasetSpec
from gme_data.evaluation.search import exact_search
from gme_data.records import modality_code

log = logging.getLogger(__name__)

RESULT_VERSION = 1
#: Datasets whose query ids reappear as corpus ids by construction; those self-matches are removed
#: before scoring (BEIR's ``ignore_identical_ids``).
IGNORE_IDENTICAL_DEFAULT = ("arguana", "quora")
_DEFAULT_METRIC_BY_TASK = {"T->T": "NDCG@10", "T->VD": "NDCG@5"}


@dataclass
class DatasetResult:
    """Scores (x100) of one dataset plus what produced them."""

    dataset: str
    name: str
    task: str
    category: str
    metric: str
    metric_key: str
    main_score: float
    scores: dict[str, float]
    num_queries: int
    num_candidates: int
    model: str
    settings_hash: str
    seconds: float
    parts: int = 1
    corpus_from_cache: bool = False
    source: str = ""
    instruction_set: str = ""
    revision: str = ""
    runtime_profile: str = ""
    version: int = RESULT_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DatasetResult:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class SuiteResult:
    """All dataset results of one model run, with task/category/overall means (x100)."""

    model: str
    suite: str
    datasets: dict[str, DatasetResult]
    failed: dict[str, str] = field(default_factory=dict)
    metrics: tuple[str, ...] = M.DEFAULT_METRICS
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    @property
    def tasks(self) -> dict[str, float]:
        return {t: _mean(r.main_score for r in self.datasets.values() if r.task == t)
                for t in TASKS if any(r.task == t for r in self.datasets.values())}

    @property
    def categories(self) -> dict[str, float]:
        return {c: _mean(r.main_score for r in self.datasets.values() if r.category == c)
                for c in CATEGORIES if any(r.category == c for r in self.datasets.values())}

    @property
    def overall(self) -> float:
        return _mean(r.main_score for r in self.datasets.values())

    @property
    def runtime_profiles(self) -> list[str]:
        """The runtime profiles that produced the scores (normally one)."""
        return sorted({r.runtime_profile or "unrecorded" for r in self.datasets.values()})

    @property
    def instruction_sets(self) -> list[str]:
        return sorted({r.instruction_set or "unrecorded" for r in self.datasets.values()})

    def metric_means(self) -> dict[str, float]:
        """Mean over datasets of each metric (x100)."""
        keys = [m for m in self.metrics if all(m in r.scores for r in self.datasets.values())]
        return {m: _mean(r.scores[m] for r in self.datasets.values()) for m in keys}

    def to_json(self) -> dict[str, Any]:
        """``results.json``: metric means keyed by metric name, then the breakdowns (NaN -> null)."""
        out: dict[str, Any] = dict(self.metric_means())
        out.update({
            "model": self.model, "suite": self.suite, "created": self.created,
            "main_score": self.overall, "overall": self.overall,
            "complete": not self.failed,
            "tasks": self.tasks, "categories": self.categories,
            "datasets": {k: {**r.scores, "main_metric": r.metric_key, "metric": r.metric, "main_score": r.main_score,
                             "task": r.task, "category": r.category, "name": r.name,
                             "num_queries": r.num_queries, "num_candidates": r.num_candidates,
                             "instruction_set": r.instruction_set, "revision": r.revision,
                             "runtime_profile": r.runtime_profile, "source": r.source}
                         for k, r in self.datasets.items()},
            "failed": dict(self.failed),
        })
        return _no_nan(out)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> SuiteResult:
        """Rebuild from a ``results.json`` (for comparisons)."""
        ds: dict[str, DatasetResult] = {}
        for slug, r in d.get("datasets", {}).items():
            scores = {k: v for k, v in r.items() if "@" in k}
            ds[slug] = DatasetResult(dataset=slug, name=r.get("name", slug), task=r["task"], category=r["category"],
                                     metric=r.get("metric", r["main_metric"]), metric_key=r["main_metric"],
                                     main_score=r["main_score"], scores=scores, num_queries=r.get("num_queries", 0),
                                     num_candidates=r.get("num_candidates", 0), model=d.get("model", ""),
                                     settings_hash="", seconds=0.0, source=r.get("source", ""),
                                     instruction_set=r.get("instruction_set", ""), revision=r.get("revision", ""),
                                     runtime_profile=r.get("runtime_profile", ""))
        return cls(model=d.get("model", ""), suite=d.get("suite", ""), datasets=ds,
                   failed=dict(d.get("failed", {})), created=d.get("created", ""))


def _no_nan(obj: Any) -> Any:
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _no_nan(v) for k, v in obj.items()}
    return obj


def _mean(values: Iterable[float]) -> float:
    vals = list(values)
    return math.fsum(vals) / len(vals) if vals else float("nan")


def _hash(*parts: Any) -> str:
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")[:80] or "model"


def runtime_profile_of(embedder: Any) -> str:
    """The embedder's runtime profile and dtype (``reference / float16``), or ``n/a``."""
    name = getattr(embedder, "runtime_profile", None)
    if not name:
        return "n/a"
    dtype = (getattr(embedder, "settings", None) or {}).get("dtype")
    return f"{name} / {dtype}" if dtype else str(name)


def _revision(spec: DatasetSpec, parts: Sequence[EvalDataset]) -> str:
    if parts and all(p.source.startswith("hf:") for p in parts):
        return spec.revision or "unpinned"
    if parts and all(p.source.startswith("copy:") for p in parts):
        return "local hub copy"
    return "local copy"


def _instruction_set(spec: DatasetSpec, parts: Sequence[EvalDataset]) -> str:
    if any(p.instruction != spec.instruction or p.query_instructions for p in parts):
        return "dataset's own"
    return spec.instruction_set


def model_key(embedder: Any) -> str:
    """The embedder's cache key (name + vector-changing settings), or its name."""
    key = getattr(embedder, "cache_key", None)
    return str(key) if key else str(getattr(embedder, "name", type(embedder).__name__))


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _write_json(path: Path, obj: Any) -> None:
    _atomic_write(path, lambda p: p.write_text(json.dumps(obj, indent=2, sort_keys=False, allow_nan=True)))


def _default_cache_dir() -> Path:
    from gme_data.settings import cache_dir

    return cache_dir() / "eval"


def encode_corpus(embedder: Any, data: EvalDataset, cache_dir: Path | None, batch_size: int,
                  show_progress: bool) -> tuple[np.ndarray, bool]:
    """Corpus embeddings, from the ``.npy`` cache when present; returns ``(vectors, from_cache)``."""
    items = list(data.corpus.values())
    path = None
    if cache_dir is not None:
        key = _hash("corpus", model_key(embedder), data.name, data.corpus_fingerprint(), "candidate", None)
        path = Path(cache_dir) / "corpus" / _safe(model_key(embedder)) / f"{_safe(data.name)}-{key}.npy"
        if path.is_file():
            try:
                vecs = np.load(path)
                if vecs.shape == (len(items), int(embedder.dim)):
                    return vecs.astype(np.float32, copy=False), True
                log.warning("%s: cached corpus embeddings have shape %s, expected %s; re-encoding", path,
                            vecs.shape, (len(items), embedder.dim))
            except (OSError, ValueError) as exc:
                log.warning("%s: unreadable cache (%s); re-encoding", path, exc)
    vecs = np.asarray(embedder.encode(items, role="candidate", instruction=None, batch_size=batch_size,
                                      show_progress=show_progress), dtype=np.float32)
    if vecs.shape != (len(items), int(embedder.dim)):
        raise GmeDataError(f"{data.name}: embedder returned {vecs.shape}, expected {(len(items), embedder.dim)}")
    if path is not None:
        def _save(p: Path) -> None:
            with p.open("wb") as fh:
                np.save(fh, vecs)

        _atomic_write(path, _save)
    return vecs, False


def encode_queries(embedder: Any, data: EvalDataset, batch_size: int, show_progress: bool) -> np.ndarray:
    """Query embeddings; queries are grouped by instruction (per-query overrides win)."""
    qids = list(data.queries)
    groups: dict[str | None, list[int]] = {}
    for i, q in enumerate(qids):
        groups.setdefault(data.query_instructions.get(q, data.instruction), []).append(i)
    out = np.zeros((len(qids), int(embedder.dim)), dtype=np.float32)
    for instr, idx in groups.items():
        items = [data.queries[qids[i]] for i in idx]
        out[idx] = embedder.encode(items, role="query", instruction=instr, batch_size=batch_size,
                                   show_progress=show_progress)
    return out


def score_part(embedder: Any, data: EvalDataset, metrics: Sequence[str], *, cache_dir: Path | None,
               top_k: int, batch_size: int, device: str | None, show_progress: bool,
               ignore_identical_ids: bool) -> tuple[dict[str, float], bool, dict[str, dict[str, float]]]:
    """Mean scores (0-1) of one dataset part, whether its corpus came from cache, and the run."""
    _check_modalities(embedder, data)
    cvecs, cached = encode_corpus(embedder, data, cache_dir, batch_size, show_progress)
    qvecs = encode_queries(embedder, data, batch_size, show_progress)
    max_k = max(top_k, max(M.parse_metric(m)[1] for m in metrics))
    cids = list(data.corpus)
    qids = list(data.queries)
    drop_self = ignore_identical_ids and any(q in data.corpus for q in qids)
    scores, idx = exact_search(qvecs, cvecs, max_k + (1 if drop_self else 0), device=device)
    run: dict[str, dict[str, float]] = {}
    for row, qid in enumerate(qids):
        hits = {}
        for s, j in zip(scores[row].tolist(), idx[row].tolist(), strict=True):
            cid = cids[j]
            if drop_self and cid == qid:
                continue
            hits[cid] = s
        if len(hits) > max_k:
            hits = dict(list(hits.items())[:max_k])
        run[qid] = hits
    per_query = M.evaluate(data.qrels, run, metrics)
    return M.mean_scores(per_query, metrics), cached, run


def _check_modalities(embedder: Any, data: EvalDataset) -> None:
    supported = set(getattr(embedder, "modalities", ("text", "image", "fused")))
    needed = {it.modality for it in data.queries.values()} | {it.modality for it in data.corpus.values()}
    missing = needed - supported
    if missing:
        raise InvalidInputError(f"{data.name}: model {getattr(embedder, 'name', '?')} does not embed "
                                f"{', '.join(sorted(missing))} items (supports {', '.join(sorted(supported))})")


def infer_task(data: EvalDataset) -> str:
    """Task label from the majority modality of queries and candidates (T->VD needs dataset.json)."""
    def code(items) -> str:
        counts: dict[str, int] = {}
        for it in items:
            counts[modality_code(it.modality)] = counts.get(modality_code(it.modality), 0) + 1
        return max(counts, key=counts.get)

    return f"{code(data.queries.values())}->{code(data.corpus.values())}"


def spec_for_local(data: EvalDataset, slug: str | None = None) -> DatasetSpec:
    """A registry-style spec for a standalone local dataset (``dataset.json`` wins over inference)."""
    task = data.task or infer_task(data)
    if task not in TASK_CATEGORY:
        raise InvalidInputError(f"{data.name}: cannot evaluate task {task!r}")
    metric = data.metric or _DEFAULT_METRIC_BY_TASK.get(task, "Recall@5")
    M.parse_metric(metric)
    return DatasetSpec(slug or data.name, data.name, task, metric, "local", None, {},
                       instruction_override=data.instruction)


def evaluate_dataset(embedder: Any, spec: DatasetSpec, parts: Sequence[EvalDataset], *,
                     metrics: Sequence[str] = M.DEFAULT_METRICS, cache_dir: Path | None = None, top_k: int = 100,
                     batch_size: int = 16, device: str | None = None, show_progress: bool = True,
                     ignore_identical_ids: bool | None = None, settings_hash: str = "") -> DatasetResult:
    """Score one dataset (mean over its parts) -> :class:`DatasetResult` with scores x100."""
    metrics = list(dict.fromkeys([*(M.canonical(m) for m in metrics), spec.metric_key]))
    ignore = (spec.slug in IGNORE_IDENTICAL_DEFAULT or bool(spec.options.get("ignore_identical_ids"))
              if ignore_identical_ids is None else ignore_identical_ids)
    t0 = time.perf_counter()
    part_scores = []
    all_cached = True
    for part in parts:
        if part.instruction is None:
            part.instruction = spec.instruction
        s, cached, _ = score_part(embedder, part, metrics, cache_dir=cache_dir, top_k=top_k, batch_size=batch_size,
                                  device=device, show_progress=show_progress, ignore_identical_ids=ignore)
        part_scores.append(s)
        all_cached &= cached
    scores = {m: 100.0 * _mean(p[m] for p in part_scores) for m in metrics}
    return DatasetResult(
        dataset=spec.slug, name=spec.name, task=spec.task, category=spec.category, metric=spec.metric,
        metric_key=spec.metric_key, main_score=scores[spec.metric_key], scores=scores,
        num_queries=sum(len(p.queries) for p in parts), num_candidates=sum(len(p.corpus) for p in parts),
        model=getattr(embedder, "name", str(embedder)), settings_hash=settings_hash,
        seconds=round(time.perf_counter() - t0, 3), parts=len(parts), corpus_from_cache=all_cached,
        source=";".join(sorted({p.source for p in parts})), instruction_set=_instruction_set(spec, parts),
        revision=_revision(spec, parts), runtime_profile=runtime_profile_of(embedder))


DatasetRef = DatasetSpec | EvalDataset | str | Path


def _dir_stamp(path: Path) -> str:
    """A cheap identity of a local copy: path plus size/mtime of its files (local layout, or a hub
    repository copy's card and parquet files)."""
    parts = [str(path.resolve())]
    names = ["queries.jsonl", "corpus.jsonl", "qrels.tsv", "dataset.json", "README.md"]
    names += sorted(str(p.relative_to(path)) for pattern in ("*.parquet", "*/*.parquet") for p in path.glob(pattern))
    for name in names:
        f = path / name
        if f.is_file():
            st = f.stat()
            parts.append(f"{name}:{st.st_size}:{st.st_mtime_ns}")
    return "|".join(parts)


def _resolve(ref: DatasetRef) -> tuple[DatasetSpec, list[EvalDataset] | None, str]:
    """(spec, preloaded parts or None, source id for the settings hash)."""
    if isinstance(ref, DatasetSpec):
        return ref, None, ref.slug
    if isinstance(ref, EvalDataset):
        return spec_for_local(ref), [ref], ref.corpus_fingerprint()
    data = load_local(ref)
    return spec_for_local(data), [data], _dir_stamp(Path(ref))


def run_suite(embedder: Any, datasets: Sequence[DatasetRef], out_dir: str | Path, *, suite: str = "custom",
              data_root: str | Path | None = None, cache_dir: str | Path | None = None,
              metrics: Sequence[str] = M.DEFAULT_METRICS, top_k: int = 100, batch_size: int = 16,
              device: str | None = None, resume: bool = True, show_progress: bool = True,
              on_error: str = "skip", results_dir: str | Path | None = None) -> SuiteResult:
    """Evaluate ``embedder`` on ``datasets`` (registry specs, loaded datasets or local-layout dirs).

    Writes ``OUT/datasets/<slug>.json`` per finished dataset, or ``RESULTS_DIR/<model key>-<hash>/<slug>.json``
    when ``results_dir`` is given (a store shared by runs, so per-dataset runs and whole-suite runs
    reuse each other's results), and returns a :class:`SuiteResult` (the caller writes reports).
    ``on_error="skip"`` records unavailable datasets in ``failed``; ``"raise"`` re-raises.
    """
    if on_error not in ("skip", "raise"):
        raise InvalidInputError(f"on_error must be 'skip' or 'raise', got {on_error!r}")
    out = Path(out_dir)
    cache = Path(cache_dir) if cache_dir is not None else _default_cache_dir()
    metrics = [M.canonical(m) for m in metrics]
    mkey = model_key(embedder)
    store = Path(results_dir) / f"{_safe(mkey)[:60]}-{_hash(mkey)[:8]}" if results_dir is not None else out / "datasets"
    store.mkdir(parents=True, exist_ok=True)
    results: dict[str, DatasetResult] = {}
    failed: dict[str, str] = {}
    refs = [_resolve(r) for r in datasets]
    bar = tqdm(refs, desc=f"eval {getattr(embedder, 'name', 'model')}", unit="dataset", disable=not show_progress)
    root = Path(data_root) if data_root is not None else None
    for spec, parts, source_id in bar:
        bar.set_postfix_str(spec.slug)
        if parts is None and root is not None and (root / spec.slug).is_dir():
            source_id = _dir_stamp(root / spec.slug)  # a local copy: its edits invalidate stored results
        shash = _hash(RESULT_VERSION, mkey, spec.slug, source_id, spec.metric_key, sorted(metrics), top_k,
                      spec.instruction, *([spec.revision] if spec.revision else []))
        rpath = store / f"{_safe(spec.slug)}.json"
        if resume and rpath.is_file():
            try:
                prev = DatasetResult.from_dict(json.loads(rpath.read_text()))
                if prev.settings_hash == shash:
                    results[spec.slug] = prev
                    continue
            except (json.JSONDecodeError, TypeError, KeyError) as exc:
                log.warning("%s: unreadable result (%s); evaluating again", rpath, exc)
        try:
            loaded = parts if parts is not None else load_spec(spec, data_root)
            res = evaluate_dataset(embedder, spec, loaded, metrics=metrics, cache_dir=cache, top_k=top_k,
                                   batch_size=batch_size, device=device, show_progress=show_progress,
                                   settings_hash=shash)
        except GmeDataError as exc:
            if on_error == "raise":
                raise
            failed[spec.slug] = f"{type(exc).__name__}: {exc}"
            log.warning("skipping %s: %s", spec.slug, exc)
            continue
        _write_json(rpath, res.to_dict())
        results[spec.slug] = res
    bar.close()
    return SuiteResult(model=getattr(embedder, "name", str(embedder)), suite=suite, datasets=results,
                       failed=failed, metrics=tuple(dict.fromkeys(metrics)))
