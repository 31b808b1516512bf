"""The ``generated_queries`` stage: candidates in, generated queries + lineage + run report out.

Styles per candidate (``GenerationConfig.styles``):

- ``t2t``: doc2query question for the paragraph (query text -> paragraph text), needs text;
- ``t2i``: caption-style query for the paragraph's image (query text -> image), needs an image;
- ``fused``: the doc2query question with its entity rewritten generically ("this plant"), so it
  needs the entity's image (query text + image -> paragraph), GME's fused synthesis; needs text.

Backends (``GenerationConfig.backend``): ``local`` starts llama.cpp's OpenAI-compatible server for a
GGUF on loopback for the run (:mod:`gme_data.generation.local_server`) and stops it afterwards,
``openai`` uses an endpoint by URL, ``offline-rules`` writes rule-based queries.

Every generated row is judged by the quality gates (:mod:`gme_data.generation.quality`); kept
and dropped rows both go to lineage with the candidate as parent, the generator and the model.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from gme_data.errors import InvalidInputError
from gme_data.generation.batch import BATCH_UNANSWERED, BatchCollector, BatchRunner
from gme_data.generation.budget import Budget, BudgetExceeded
from gme_data.generation.cache import ResponseCache
from gme_data.generation.client import ChatClient, Ledger, StructuredResult, image_data_url
from gme_data.generation.config import GenerationConfig
from gme_data.generation.local_server import LocalLLMServer, resolve_gguf
from gme_data.generation.offline import offline_caption_query, offline_doc2query
from gme_data.generation.prompts import LANGUAGE_NAMES, PromptTemplate, load_prompt
from gme_data.generation.quality import check_query, prompt_copy
from gme_data.generation.report import RunReport
from gme_data.generation.tokens import prompt_counter
from gme_data.generation.usage import record_usage, run_spend, usage_rows
from gme_data.lineage import StageOutput
from gme_data.records import stable_id
from gme_data.redaction import redact
from gme_data.settings import cache_dir
from gme_data.tables import strict_text

STAGE = "generated_queries"
RECORD_KIND = "generated_query"
INPUT_COLUMNS = ("id", "title", "text", "image", "source", "shard", "domain", "domain_confidence", "url")
OUTPUT_COLUMNS = ("id", "candidate_id", "style", "query", "answer", "entity", "rewritten_query",
                  "prompt_version", "model", "query_modality", "candidate_modality")
MAX_PARAGRAPH_CHARS = 6000
NO_ENTITY = "no_entity"
UNREADABLE_IMAGE = "unreadable_image"
_IMAGE_HINT = "The attached image shows the paragraph's subject; use it."


@dataclass(frozen=True)
class Candidate:
    """The fields of one candidate row the generator uses (validated)."""

    id: str
    title: str | None
    text: str | None
    image: str | None
    domain: str | None


@dataclass
class Draft:
    """One generated row before (or after) the quality gates; ``reason`` set means dropped."""

    candidate: Candidate
    style: str
    prompt_version: str
    model: str
    query: str | None = None
    answer: str | None = None
    entity: str | None = None
    rewritten_query: str | None = None
    reason: str | None = None
    detail: str = ""
    response_keys: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return stable_id("gq", self.candidate.id, self.style, self.model, self.prompt_version)

    def row(self) -> dict[str, Any]:
        query_mod, cand_mod = {"t2t": ("text", "text"), "t2i": ("text", "image"),
                               "fused": ("fused", "fused" if self.candidate.image else "text")}[self.style]
        return {"id": self.id, "candidate_id": self.candidate.id, "style": self.style, "query": self.query,
                "answer": self.answer, "entity": self.entity, "rewritten_query": self.rewritten_query,
                "prompt_version": self.prompt_version, "model": self.model,
                "query_modality": query_mod, "candidate_modality": cand_mod}


@dataclass
class GenerationResult:
    """The stage's output: the table, its lineage and the run report (unpacks as a 3-tuple)."""

    table: pd.DataFrame
    lineage: StageOutput
    report: RunReport

    def __iter__(self) -> Iterator[Any]:
        return iter((self.table, self.lineage, self.report))


# ---- input validation -------------------------------------------------------------------------
def parse_candidates(candidates: pd.DataFrame) -> list[Candidate]:
    """Validate the candidates table (columns, ids, types) and return its rows."""
    if not isinstance(candidates, pd.DataFrame):
        raise InvalidInputError(f"candidates must be a pandas DataFrame, got {type(candidates).__name__}")
    missing = [c for c in INPUT_COLUMNS if c not in candidates.columns]
    if missing:
        raise InvalidInputError(f"candidates table lacks column(s) {missing}; expected {list(INPUT_COLUMNS)}")
    out: list[Candidate] = []
    seen: set[str] = set()
    for pos, rec in enumerate(candidates[["id", "title", "text", "image", "domain"]].to_dict("records")):
        rid = rec["id"]
        if not isinstance(rid, str) or not rid.strip():
            raise InvalidInputError(f"candidates row {pos}: id must be a non-empty string, got {rid!r}")
        if rid in seen:
            raise InvalidInputError(f"candidates row {pos}: duplicate id {rid!r}")
        seen.add(rid)
        text = strict_text(rec["text"], "text", rid)
        out.append(Candidate(rid, strict_text(rec["title"], "title", rid),
                             text[:MAX_PARAGRAPH_CHARS] if text else None,
                             strict_text(rec["image"], "image", rid), strict_text(rec["domain"], "domain", rid)))
    return out


# ---- backends -----------------------------------------------------------------------------
def offline_prompt_version() -> str:
    """``"offline-rules@v1+<sha>"``: the sha covers the rule modules, so edited rules get a new version."""
    here = Path(__file__).parent
    h = hashlib.sha1()
    for name in ("offline.py", "domains.py"):
        h.update((here / name).read_bytes())
    return f"offline-rules@v1+{h.hexdigest()[:8]}"


class OfflineBackend:
    """Rule-based drafts (deterministic, no endpoint)."""

    def __init__(self, config: GenerationConfig):
        self.config = config
        self.version = offline_prompt_version()
        self.model = config.model_name

    def prompt_versions(self) -> dict[str, str]:
        return {"offline": self.version}

    def drafts(self, c: Candidate, styles: tuple[str, ...]) -> list[Draft]:
        out: list[Draft] = []
        made = offline_doc2query(c.title, c.text, c.domain) if c.text else None
        for style in styles:
            d = Draft(c, style, self.version, self.model)
            if style == "t2i":
                d.query = offline_caption_query(c.title, c.text, c.domain)
                d.entity = made.entity if made else None
            elif made is not None:
                d.query, d.answer, d.entity = made.query, made.answer, made.entity
                if style == "fused":
                    d.rewritten_query = made.rewritten_query
            if d.query is None:
                d.reason, d.detail = NO_ENTITY, "no title and no subject found in the paragraph"
            out.append(d)
        return out


class LLMBackend:
    """Drafts from an OpenAI-compatible endpoint (doc2query, entity rewrite, caption query)."""

    def __init__(self, config: GenerationConfig, cache: ResponseCache | None, ledger: Ledger,
                 server: LocalLLMServer | None = None, budget: Budget | None = None):
        self.config = config
        self.server = server
        counter = None
        if budget is not None and budget.limited:
            _, counter = prompt_counter(config.backend, config.model, str(server.model.path) if server else "")
        self.client = ChatClient(config, cache, ledger, health=server.exit_problem if server else None,
                                 budget=budget, count_prompt=counter)
        self.model = config.model
        suffix = "" if config.prompt_variant == "standard" else f"_{config.prompt_variant}"
        self.doc2query: PromptTemplate = load_prompt("doc2query" + suffix)
        self.rewrite: PromptTemplate = load_prompt("entity_rewrite" + suffix)
        self.caption: PromptTemplate = load_prompt("caption_query" + suffix)

    def prompt_versions(self) -> dict[str, str]:
        return {t.name: t.version for t in (self.doc2query, self.rewrite, self.caption)}

    def _image(self, c: Candidate) -> tuple[str | None, str]:
        if not (c.image and self.config.send_images) or self.server is not None:  # the local model reads text only
            return None, ""
        try:
            return image_data_url(c.image, self.config.image_max_side), ""
        except (OSError, ValueError) as exc:
            return None, f"candidate {c.id}: image {c.image}: {exc}"

    def drafts(self, c: Candidate, styles: tuple[str, ...]) -> list[Draft]:
        values = {"title": c.title or "", "domain": c.domain or "unknown", "text": c.text or "",
                  "language": LANGUAGE_NAMES[self.config.expected_language], "image_hint": ""}
        image_url, image_error = self._image(c)
        if image_url:
            values["image_hint"] = _IMAGE_HINT
        d2q: StructuredResult | None = None
        if c.text and ("t2t" in styles or "fused" in styles):
            d2q = self.client.structured(self.doc2query, values)
        out: list[Draft] = []
        for style in styles:
            if style == "t2i":
                out.append(self._caption(c, values, image_url, image_error))
                continue
            assert d2q is not None
            version = self.doc2query.version if style == "t2t" else f"{self.doc2query.version};{self.rewrite.version}"
            d = Draft(c, style, version, self.model, response_keys=list(d2q.keys))
            out.append(d)
            if d2q.data is None:
                d.reason, d.detail = d2q.reason, f"doc2query: {d2q.detail}"
                continue
            d.query, d.answer = d2q.data["query"], d2q.data["answer"]
            d.reason, d.detail = prompt_copy(d.query, self.doc2query.static_text, self.config.max_copy_overlap)
            if style == "fused" and d.reason is None:
                rw = self.client.structured(self.rewrite, {**values, "query": d.query, "answer": d.answer},
                                            image_url)
                d.response_keys += rw.keys
                if rw.data is None:
                    d.reason, d.detail = rw.reason, f"entity_rewrite: {rw.detail}"
                else:
                    d.entity, d.rewritten_query = rw.data["entity"], rw.data["rewritten_query"]
                    d.reason, d.detail = prompt_copy(d.rewritten_query, self.rewrite.static_text,
                                                     self.config.max_copy_overlap)
        entity = next((d.entity for d in out if d.entity), None)
        for d in out:
            d.entity = d.entity or entity
        return out

    def _caption(self, c: Candidate, values: dict[str, Any], image_url: str | None, image_error: str) -> Draft:
        d = Draft(c, "t2i", self.caption.version, self.model)
        if image_error:
            d.reason, d.detail = UNREADABLE_IMAGE, image_error
            return d
        res = self.client.structured(self.caption, values, image_url)
        d.response_keys = list(res.keys)
        if res.data is None:
            d.reason, d.detail = res.reason, f"caption_query: {res.detail}"
        else:
            d.query = res.data["query"]
            d.reason, d.detail = prompt_copy(d.query, self.caption.static_text, self.config.max_copy_overlap)
        return d


# ---- the stage ----------------------------------------------------------------------------
def _styles_for(c: Candidate, styles: tuple[str, ...], skipped: Counter[str]) -> tuple[str, ...]:
    usable = []
    for style in styles:
        if style in ("t2t", "fused") and not c.text:
            skipped[f"{style}:no_text"] += 1
        elif style == "t2i" and not c.image:
            skipped[f"{style}:no_image"] += 1
        else:
            usable.append(style)
    return tuple(usable)


def generate_queries(candidates: pd.DataFrame, config: GenerationConfig | None = None,
                     cache_path: str | Path | None = None, show_progress: bool = True, *,
                     run_id: str = "", partition: str = "") -> GenerationResult:
    """Generate queries for ``candidates`` (see the module docstring for the styles).

    ``cache_path`` (else ``config.cache_path``, else ``<GME_DATA_HOME>/cache/llm_responses.duckdb``)
    is the DuckDB response cache of the ``local`` and ``openai`` backends; the rules need none.
    With ``max_budget_usd`` / ``max_budget_tokens`` set, a run that reaches its budget sends nothing
    more, lets the requests in flight finish (their answers are cached) and raises
    :class:`BudgetExceeded` saying what was spent and how many candidates are done and remain.
    The usage per prompt is written to the ``llm_usage`` table under ``run_id`` / ``partition``.
    """
    config = config or GenerationConfig()
    started = time.monotonic()
    rows = parse_candidates(candidates)
    ledger = Ledger()
    budget = Budget(config.max_budget_usd, config.max_budget_tokens, *config.active_prices)
    cache: ResponseCache | None = None
    server: LocalLLMServer | None = None
    status = "ok"
    batches: list[dict[str, Any]] = []
    try:
        if config.backend == "offline-rules":
            backend: OfflineBackend | LLMBackend = OfflineBackend(config)
        else:
            if config.backend == "local":
                server = LocalLLMServer(resolve_gguf(config.gguf_path), threads=config.server_threads,
                                        context_size=config.context_size,
                                        start_timeout_s=config.server_start_timeout_s).start()
                config = config.with_overrides(base_url=server.base_url, model=server.model.model_id)
            cache = ResponseCache(Path(cache_path or config.cache_path or cache_dir() / "llm_responses.duckdb"))
            if config.max_run_budget_usd > 0:
                _apply_run_budget(budget, config, cache, run_id, partition)
            backend = LLMBackend(config, cache, ledger, server, budget)
        try:
            if config.mode == "batch":
                assert isinstance(backend, LLMBackend) and cache is not None
                results, skipped, batches = _run_batches(backend, rows, config, cache)
            else:
                results, skipped = _run(backend, rows, config, show_progress)
        except BudgetExceeded as exc:
            status = "stopped_by_budget"
            raise BudgetExceeded(_budget_message(exc, budget, ledger, config, cache)) from None
        server_info = server.describe() if server is not None else {}
    finally:
        if cache is not None:
            record_usage(cache, usage_rows(
                ledger.by_prompt, run_id=run_id, partition=partition, model=config.model_name, mode=config.mode,
                price_prompt_per_1k=config.active_prices[0],
                price_completion_per_1k=config.active_prices[1], budget_usd=config.max_budget_usd,
                budget_tokens=config.max_budget_tokens, status=status))
            cache.close()
        if server is not None:
            server.stop()
    out = _assemble(results, config, backend, ledger, skipped, len(rows), started, server_info)
    out.report.batches = batches
    return out


def _apply_run_budget(budget: Budget, config: GenerationConfig, cache: ResponseCache, run_id: str,
                      partition: str) -> None:
    """Lower this partition's dollar cap to what the run has left (``max_run_budget_usd`` minus the
    spend the usage table holds for the run's other partitions)."""
    spent = run_spend(cache, run_id, exclude_partition=partition) if run_id else 0.0
    left = config.max_run_budget_usd - spent
    if budget.max_usd <= 0 or left < budget.max_usd:
        budget.max_usd = max(left, 1e-12)
        budget.cap_name = f"max_run_budget_usd={config.max_run_budget_usd:g} (${spent:.6f} spent by other partitions)"


def _budget_message(exc: BudgetExceeded, budget: Budget, ledger: Ledger, config: GenerationConfig,
                    cache: ResponseCache | None) -> str:
    done, total = getattr(exc, "progress", (0, 0))
    where = f" in {cache.path}" if cache is not None else ""
    return (f"generated_queries stopped by its budget: {exc}. Spent ${budget.spent_usd:.6f} "
            f"({budget.spent_tokens} tokens) on {ledger.responses} fresh requests (+{ledger.cache_hits} from the "
            f"cache); {done} of {total} candidates done, {total - done} remain. Every answer received is "
            f"cached{where}: raise max_budget_usd / max_budget_tokens (now {config.max_budget_usd:g} / "
            f"{config.max_budget_tokens}) and re-materialize to continue without repeating a request.")


def _run(backend: OfflineBackend | LLMBackend, rows: list[Candidate],
         config: GenerationConfig, show_progress: bool) -> tuple[list[list[Draft]], Counter[str]]:
    skipped: Counter[str] = Counter()
    plans = [(c, _styles_for(c, config.style_list, skipped)) for c in rows]
    results: list[list[Draft]] = [[] for _ in rows]
    done = 0
    try:
        with tqdm(total=len(rows), desc=f"generated_queries ({config.backend})", unit="cand",
                  disable=not show_progress) as bar:
            if isinstance(backend, OfflineBackend) or config.concurrency == 1:
                for i, (c, styles) in enumerate(plans):
                    results[i] = backend.drafts(c, styles) if styles else []
                    done += 1
                    bar.update(1)
            else:
                done = _run_pool(backend, plans, results, config, bar)
    except BudgetExceeded as exc:
        exc.progress = (getattr(exc, "progress", (done, 0))[0], len(rows))  # type: ignore[attr-defined]
        raise
    return results, skipped


def _run_batches(backend: LLMBackend, rows: list[Candidate], config: GenerationConfig,
                 cache: ResponseCache) -> tuple[list[list[Draft]], Counter[str], list[dict[str, Any]]]:
    """Batch mode (see :mod:`gme_data.generation.batch`): rounds until the cache answers every request."""
    client = backend.client
    runner = BatchRunner(client, cache)
    for _ in range(config.batch_max_rounds):
        collector = BatchCollector(client.budget)
        client.defer = collector
        try:
            results, skipped = _run(backend, rows, config, show_progress=False)
        except BudgetExceeded:
            client.defer = None
            if collector.pending:  # what fitted into the budget is still asked, so it is cached
                runner.run(collector.pending)
            raise
        finally:
            client.defer = None
        if not collector.pending:
            return results, skipped, runner.batches
        runner.run(collector.pending)
    client.give_up = BATCH_UNANSWERED  # still unanswered after the last batch: dropped, not asked again
    try:
        results, skipped = _run(backend, rows, config, show_progress=False)
    finally:
        client.give_up = None
    return results, skipped, runner.batches


def _run_pool(backend: OfflineBackend | LLMBackend, plans: list[tuple[Candidate, tuple[str, ...]]],
              results: list[list[Draft]], config: GenerationConfig, bar: Any) -> int:
    """Run the candidates on ``config.concurrency`` threads; returns how many are done.

    On :class:`BudgetExceeded` queued candidates are cancelled, those in flight finish (their answers
    are cached), and the exception carries ``progress = (done, _)``.
    """
    done = 0
    with ThreadPoolExecutor(max_workers=config.concurrency, thread_name_prefix="gq") as pool:
        futures = {pool.submit(backend.drafts, c, styles): i for i, (c, styles) in enumerate(plans) if styles}
        done = len(plans) - len(futures)
        bar.update(done)
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for fut in finished:
                if fut.exception() is not None:
                    for other in pending:
                        other.cancel()
                    error = fut.exception()
                    if isinstance(error, BudgetExceeded):
                        wait(pending)  # requests in flight finish and are cached
                        done = len(plans) - len(futures) + sum(
                            1 for f in futures if not f.cancelled() and f.exception() is None)
                        error.progress = (done, 0)  # type: ignore[attr-defined]
                    raise error  # type: ignore[misc]
                results[futures[fut]] = fut.result()
                done += 1
                bar.update(1)
    return done


def _assemble(results: list[list[Draft]], config: GenerationConfig, backend: OfflineBackend | LLMBackend,
              ledger: Ledger, skipped: Counter[str], n_candidates: int, started: float,
              server_info: dict[str, Any]) -> GenerationResult:
    lineage = StageOutput()
    kept_rows: list[dict[str, Any]] = []
    secrets = [config.api_key] if config.api_key else []
    for draft in (d for drafts in results for d in drafts):
        row = draft.row()
        if draft.reason is None:
            draft.reason, draft.detail = check_query(row, config, draft.candidate.text, draft.candidate.title)
        common = {"style": draft.style, "prompt_version": draft.prompt_version, "model": draft.model,
                  "generator": config.generator, "response_keys": draft.response_keys}
        if draft.reason is None:
            kept_rows.append(row)
            lineage.keep(draft.id, RECORD_KIND, parents=[draft.candidate.id], stage=STAGE, **common)
        else:
            lineage.drop(draft.id, RECORD_KIND, draft.reason, parents=[draft.candidate.id], stage=STAGE,
                         detail=redact(draft.detail, secrets), query=draft.query, answer=draft.answer, entity=draft.entity,
                         rewritten_query=draft.rewritten_query, **common)
    table = pd.DataFrame(kept_rows, columns=list(OUTPUT_COLUMNS), dtype=object)
    table = table.where(table.notna(), None)
    usage = ledger.as_dict()
    report = RunReport(
        backend=config.backend, generator=config.generator, model=backend.model,
        prompt_versions=backend.prompt_versions(), llm_server=server_info,
        candidates=n_candidates, kept=len(kept_rows), dropped=len(lineage.records) - len(kept_rows),
        kept_by_style=dict(Counter(table["style"])) if len(table) else {},
        drops_by_reason=lineage.drop_counts(), skipped=dict(skipped),
        requests=usage["requests"], responses=usage["responses"], cache_hits=usage["cache_hits"],
        http_retries=usage["http_retries"], http_errors=usage["http_errors"],
        invalid_responses=usage["invalid_responses"], prompt_tokens=usage["prompt_tokens"],
        completion_tokens=usage["completion_tokens"], cached_prompt_tokens=usage["cached_prompt_tokens"],
        cached_completion_tokens=usage["cached_completion_tokens"],
        cost_usd=ledger.cost(*config.active_prices),
        max_budget_usd=config.max_budget_usd, max_budget_tokens=config.max_budget_tokens,
        usage_by_prompt=usage["by_prompt"], mode=config.mode,
        elapsed_s=round(time.monotonic() - started, 3),
    )
    return GenerationResult(table, lineage, report)
