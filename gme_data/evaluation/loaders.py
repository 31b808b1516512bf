"""Load evaluation datasets: the local layout, BEIR, M-BEIR, ViDoRe (BEIR format) and MTEB any2any.

The local layout (anyone can produce it; :mod:`gme_data.evaluation.local_suite` writes it)::

    DIR/
      queries.jsonl   {"id": ..., "text": ..., "image": "rel/path.png", "instruction": ...}  (text/image optional, not both absent)
      corpus.jsonl    {"id": ..., "text": ..., "image": ..., "title": ...}                    (title optional: text becomes "title text")
      qrels.tsv       header "query-id<TAB>corpus-id<TAB>score", then one judgement per row (integer score)
      dataset.json    optional: {"name", "task", "metric", "instruction"}
      images/...      image paths are relative to DIR (absolute paths work too)

BEIR's own folders (``corpus.jsonl``/``queries.jsonl`` with ``_id``, ``qrels/test.tsv``) load as is.
Only queries that have judgements are evaluated. Problems raise named errors:
:class:`DatasetFileMissingError` (which file), :class:`BadRowError` (file and row), and
:class:`UnknownIdError` (qrels naming ids that queries/corpus lack).

Hub sources (used when ``DATA_ROOT/<slug>`` holds no local-layout copy) go through
``datasets.load_dataset`` at the revision the registry pins: BEIR, ViDoRe's BEIR-format copies
(configs ``queries`` [query-id, query], ``corpus`` [corpus-id, image], ``qrels`` [query-id,
corpus-id, score]) and MTEB's multimodal "any2any" format of ``izhx/UMRB-*`` and ``mteb/flickr30k*``
(configs ``corpus`` / ``query`` (or ``queries``) / ``qrels`` (or ``default``), rows ``id``,
``modality`` in {text, image, "image,text"}, ``text``, ``image``). A copy of such a hub repository
(its README.md dataset card with ``configs`` and its parquet files, e.g. from ``huggingface-cli
download --repo-type dataset``) at ``DATA_ROOT/<slug>`` is read the same way, offline. M-BEIR from a local M-BEIR checkout (``DATA_ROOT/M-BEIR`` or
``$GME_DATA_MBEIR_ROOT``) whose jsonl files are fetched from ``TIGER-Lab/M-BEIR`` when missing
(its images must be extracted there by hand: they ship as large tarballs). Offline
(``HF_HUB_OFFLINE=1`` / ``HF_DATASETS_OFFLINE=1``) or on a hub failure a
:class:`DatasetUnavailableError` names the dataset, the source and the local path to use instead.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gme_data.errors import InvalidItemError
from gme_data.evaluation.errors import (
    BadRowError,
    DatasetFileMissingError,
    DatasetUnavailableError,
    UnknownIdError,
)
from gme_data.evaluation.registry import TASKS, DatasetSpec
from gme_data.records import Item

log = logging.getLogger(__name__)

QRELS_HEADER = ("query-id", "corpus-id", "score")


@dataclass
class EvalDataset:
    """Queries, candidates and judgements of one dataset (or one part of a multi-part dataset)."""

    name: str
    queries: dict[str, Item]
    corpus: dict[str, Item]
    qrels: dict[str, dict[str, int]]
    instruction: str | None = None
    query_instructions: dict[str, str] = field(default_factory=dict)
    task: str | None = None
    metric: str | None = None
    source: str = ""
    _fingerprint: str | None = field(default=None, repr=False)

    def corpus_fingerprint(self) -> str:
        """sha1 over candidate ids, texts and image identities (path+size+mtime; PIL: mode+size)."""
        if self._fingerprint is None:
            h = hashlib.sha1()
            for cid, item in self.corpus.items():
                h.update(cid.encode())
                h.update(b"\x1f")
                h.update((item.text or "").encode())
                h.update(b"\x1f")
                h.update(_image_identity(item).encode())
                h.update(b"\x1e")
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "queries": len(self.queries), "candidates": len(self.corpus),
                "judgements": sum(len(v) for v in self.qrels.values()), "task": self.task, "source": self.source}


def _image_identity(item: Item) -> str:
    img = item.image
    if img is None:
        return ""
    if isinstance(img, (str, Path)):
        try:
            st = Path(img).stat()
            return f"{Path(img).resolve()}|{st.st_size}|{st.st_mtime_ns}"
        except OSError:
            return str(img)
    if isinstance(img, bytes):
        return hashlib.sha1(img).hexdigest()
    meta = (item.metadata or {}).get("image_key", "")
    return f"pil|{img.mode}|{img.size}|{meta}"


def default_data_root() -> Path:
    """Where datasets in the local layout live: ``$GME_DATA_UMRB_ROOT`` or ``<home>/umrb``."""
    env = os.environ.get("GME_DATA_UMRB_ROOT")
    if env:
        return Path(env)
    from gme_data.settings import home

    return home() / "umrb"


# ----------------------------------------------------------------------------- local layout
def _iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise BadRowError(path, lineno, f"invalid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise BadRowError(path, lineno, f"expected a JSON object, got {type(row).__name__}")
            yield lineno, row


def _str_field(row: dict[str, Any], key: str, path: Path, lineno: int) -> str | None:
    v = row.get(key)
    if v is None:
        return None
    if not isinstance(v, str):
        raise BadRowError(path, lineno, f"field {key!r} must be a string, got {type(v).__name__}")
    return v if v.strip() else None


def _read_items(path: Path, root: Path, kind: str) -> tuple[dict[str, Item], dict[str, str]]:
    items: dict[str, Item] = {}
    instructions: dict[str, str] = {}
    for lineno, row in _iter_jsonl(path):
        rid = row.get("id", row.get("_id"))
        if isinstance(rid, int) and not isinstance(rid, bool):
            rid = str(rid)
        if not isinstance(rid, str) or not rid.strip():
            raise BadRowError(path, lineno, "missing or empty 'id'")
        if rid in items:
            raise BadRowError(path, lineno, f"duplicate id {rid!r}")
        text = _str_field(row, "text", path, lineno)
        title = _str_field(row, "title", path, lineno) if kind == "corpus" else None
        if title:
            text = f"{title} {text}" if text else title
        image = _str_field(row, "image", path, lineno)
        image_path: Path | None = None
        if image is not None:
            image_path = Path(image) if Path(image).is_absolute() else root / image
            if not image_path.is_file():
                raise BadRowError(path, lineno, f"{kind} {rid!r}: image file not found: {image_path}")
        if text is None and image_path is None:
            raise BadRowError(path, lineno, f"{kind} {rid!r}: needs 'text' or 'image' (both empty)")
        instr = _str_field(row, "instruction", path, lineno) if kind == "query" else None
        if instr:
            instructions[rid] = instr
        try:
            items[rid] = Item(text=text, image=str(image_path) if image_path else None, id=rid,
                              metadata={"title": title} if title else None)
        except InvalidItemError as exc:
            raise BadRowError(path, lineno, str(exc)) from None
    return items, instructions


def read_qrels_tsv(path: Path) -> list[tuple[int, str, str, int]]:
    """Rows ``(line, query_id, corpus_id, score)`` of a qrels.tsv with its header."""
    rows: list[tuple[int, str, str, int]] = []
    with path.open(encoding="utf-8") as fh:
        header_seen = False
        for lineno, line in enumerate(fh, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            parts = line.split("\t")
            if not header_seen:
                if tuple(p.strip().lower() for p in parts[:3]) != QRELS_HEADER:
                    raise BadRowError(path, lineno, "expected the header 'query-id<TAB>corpus-id<TAB>score', "
                                                    f"got {line[:80]!r}")
                header_seen = True
                continue
            if len(parts) != 3:
                raise BadRowError(path, lineno, f"expected 3 tab-separated fields, got {len(parts)}")
            qid, cid, score = (p.strip() for p in parts)
            if not qid or not cid:
                raise BadRowError(path, lineno, "empty query-id or corpus-id")
            try:
                value = float(score)
                if not value.is_integer():
                    raise ValueError
            except ValueError:
                raise BadRowError(path, lineno, f"score must be an integer, got {score!r}") from None
            rows.append((lineno, qid, cid, int(value)))
        if not header_seen:
            raise BadRowError(path, 1, "empty qrels file (expected a header and judgements)")
    return rows


def _find(root: Path, names: tuple[str, ...], dataset: str) -> Path:
    for n in names:
        if (root / n).is_file():
            return root / n
    raise DatasetFileMissingError(root / names[0], dataset,
                                  "" if len(names) == 1 else f"also looked for {', '.join(names[1:])}")


def is_local_layout(path: str | Path) -> bool:
    p = Path(path)
    return p.is_dir() and (p / "queries.jsonl").is_file() and (p / "corpus.jsonl").is_file()


def load_local(path: str | Path, name: str | None = None, split: str = "test", strict: bool = True,
               spec: DatasetSpec | None = None) -> EvalDataset:
    """Load a dataset in the local layout (see the module docstring).

    ``strict=False`` drops qrels rows naming unknown ids (with a warning) instead of raising
    :class:`UnknownIdError`.
    """
    root = Path(path)
    meta: dict[str, Any] = {}
    dataset = name or (spec.slug if spec else root.name)
    if not root.is_dir():
        raise DatasetFileMissingError(root, dataset, "expected a directory with queries.jsonl, corpus.jsonl, qrels.tsv")
    if (root / "dataset.json").is_file():
        try:
            meta = json.loads((root / "dataset.json").read_text())
        except json.JSONDecodeError as exc:
            raise BadRowError(root / "dataset.json", exc.lineno, f"invalid JSON ({exc.msg})") from None
        if not isinstance(meta, dict):
            raise BadRowError(root / "dataset.json", 1, "expected a JSON object")
    dataset = name or meta.get("name") or dataset
    qpath = _find(root, ("queries.jsonl",), dataset)
    cpath = _find(root, ("corpus.jsonl",), dataset)
    rpath = _find(root, ("qrels.tsv", f"qrels/{split}.tsv"), dataset)
    queries, q_instr = _read_items(qpath, root, "query")
    corpus, _ = _read_items(cpath, root, "corpus")
    qrels: dict[str, dict[str, int]] = {}
    unknown_q: dict[str, int] = {}
    unknown_c: dict[str, int] = {}
    for lineno, qid, cid, score in read_qrels_tsv(rpath):
        bad = False
        if qid not in queries:
            unknown_q.setdefault(qid, lineno)
            bad = True
        if cid not in corpus:
            unknown_c.setdefault(cid, lineno)
            bad = True
        if not bad:
            qrels.setdefault(qid, {})[cid] = score
    for kind, unknown in (("query", unknown_q), ("corpus", unknown_c)):
        if unknown:
            if strict:
                raise UnknownIdError(rpath, kind, list(unknown), line=min(unknown.values()))
            log.warning("%s: dropped qrels naming %d unknown %s id(s)", rpath, len(unknown), kind)
    if not qrels:
        raise BadRowError(rpath, 1, "no usable judgements")
    task = meta.get("task") or (spec.task if spec else None)
    if task is not None and task not in TASKS:
        raise BadRowError(root / "dataset.json", 1, f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    instruction = meta.get("instruction") or (spec.instruction if spec else None)
    evaluated = {q: queries[q] for q in queries if q in qrels}
    return EvalDataset(name=dataset, queries=evaluated, corpus=corpus, qrels=qrels, instruction=instruction,
                       query_instructions={q: i for q, i in q_instr.items() if q in evaluated}, task=task,
                       metric=meta.get("metric") or (spec.metric if spec else None), source=str(root))


# ----------------------------------------------------------------------------- hub sources
def hub_offline() -> bool:
    """True when the Hugging Face hub must not be contacted (``HF_HUB_OFFLINE`` / ``HF_DATASETS_OFFLINE``)."""
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on"):
            return True
    return False


def _hub_call(spec_name: str, hub_id: str, local: Path, fn, *args: Any, local_copy: bool = False,
              **kwargs: Any):
    if local_copy:  # a copy of the hub repository on disk: no network involved
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - an unreadable copy becomes a named error
            raise DatasetUnavailableError(spec_name, f"the local hub copy {hub_id}", None,
                                          f"{type(exc).__name__}: {str(exc)[:300]}") from exc
    if hub_offline():
        raise DatasetUnavailableError(spec_name, f"the Hugging Face hub ({hub_id})", local,
                                      "offline mode is on (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE)")
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - any hub/network failure becomes a named error
        raise DatasetUnavailableError(spec_name, f"the Hugging Face hub ({hub_id})", local,
                                      f"{type(exc).__name__}: {str(exc)[:300]}") from exc


def _hf_load(*args: Any, **kwargs: Any):
    from datasets import load_dataset

    return load_dataset(*args, **kwargs)


def is_hub_copy(path: str | Path) -> bool:
    """True for a folder holding a copy of a hub dataset repository (README.md card or parquet files)."""
    p = Path(path)
    if not p.is_dir():
        return False
    return (p / "README.md").is_file() or any(True for _ in p.glob("*.parquet")) or any(
        True for _ in p.glob("*/*.parquet"))


@dataclass(frozen=True)
class HubRef:
    """Where a hub-format dataset is read: a hub id at a revision, or a local copy of the repository."""

    spec: DatasetSpec
    path: str
    revision: str | None
    local: Path
    local_copy: bool

    @property
    def label(self) -> str:
        return f"copy:{self.path}" if self.local_copy else f"hf:{self.path}@{self.revision or 'latest'}"

    def call(self, fn, *args: Any, **kwargs: Any):
        return _hub_call(self.spec.slug, self.path, self.local, fn, *args, local_copy=self.local_copy, **kwargs)

    def config(self, names: tuple[str, ...], splits: tuple[str, ...]):
        """The first config of ``names`` the repository has, at the first of ``splits`` it offers
        (or its only split)."""
        from datasets import get_dataset_config_names, get_dataset_split_names

        configs = self.call(get_dataset_config_names, self.path, revision=self.revision)
        name = next((n for n in names if n in configs), None)
        if name is None:
            raise DatasetUnavailableError(self.spec.slug, self.label, self.local,
                                          f"none of the configs {list(names)} (it has {sorted(configs)})")
        have = self.call(get_dataset_split_names, self.path, name, revision=self.revision)
        split = next((s for s in splits if s in have), have[0] if len(have) == 1 else None)
        if split is None:
            raise DatasetUnavailableError(self.spec.slug, self.label, self.local,
                                          f"config {name!r} has none of the splits {list(splits)} (it has {have})")
        from gme_data.settings import cache_dir

        # a local copy is re-read every time: datasets' cache can miss an edit of a same-sized file
        fresh = {"download_mode": "force_redownload"} if self.local_copy else {}
        return self.call(_hf_load, self.path, name, split=split, revision=self.revision,
                         cache_dir=str(cache_dir() / "hf-datasets"), **fresh), f"{self.label}/{name}"


def _hub_ref(spec: DatasetSpec, local: Path) -> HubRef:
    if is_hub_copy(local):
        return HubRef(spec, str(local), None, local, True)
    return HubRef(spec, spec.hub_id or "", spec.revision, local, False)


def _qrels_rows(ds, where: str, queries: dict[str, Item], corpus: dict[str, Item]) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    dropped = 0
    for i, r in enumerate(ds):
        try:
            qid, cid, score = str(r["query-id"]), str(r["corpus-id"]), int(float(r["score"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise BadRowError(where, i + 1, f"qrels row needs query-id, corpus-id and a numeric score ({exc})") from None
        if qid in queries and cid in corpus:
            qrels.setdefault(qid, {})[cid] = score
        else:
            dropped += 1
    if dropped:
        log.warning("%s: dropped %d qrels rows naming ids absent from queries/corpus", where, dropped)
    if not qrels:
        raise BadRowError(where, 1, "no usable judgements")
    return qrels


def load_vidore_beir(spec: DatasetSpec, local: Path, split: str = "test") -> EvalDataset:
    """ViDoRe's BEIR-format copy: ``queries`` (query-id, query), ``corpus`` (corpus-id, image), ``qrels``."""
    ref = _hub_ref(spec, local)
    queries_ds, qwhere = ref.config(("queries",), (split,))
    corpus_ds, cwhere = ref.config(("corpus",), (split, "corpus"))
    qrels_ds, rwhere = ref.config(("qrels",), (split,))
    corpus: dict[str, Item] = {}
    for i, row in enumerate(corpus_ds):
        cid, image = row.get("corpus-id"), row.get("image")
        if cid is None or image is None:
            raise BadRowError(cwhere, i + 1, "corpus row needs 'corpus-id' and 'image'")
        corpus[str(cid)] = Item(image=image, id=str(cid), metadata={"image_key": f"{ref.label}:{cid}"})
    queries: dict[str, Item] = {}
    for i, row in enumerate(queries_ds):
        qid, text = row.get("query-id"), (row.get("query") or "").strip()
        if qid is None or not text:
            raise BadRowError(qwhere, i + 1, "query row needs 'query-id' and a non-empty 'query'")
        queries[str(qid)] = Item(text=text, id=str(qid))
    qrels = _qrels_rows(qrels_ds, rwhere, queries, corpus)
    return EvalDataset(name=spec.slug, queries={q: queries[q] for q in queries if q in qrels}, corpus=corpus,
                       qrels=qrels, instruction=spec.instruction, task=spec.task, metric=spec.metric,
                       source=ref.label)


_ANY2ANY_MODALITIES = {"text": (True, False), "image": (False, True), "image,text": (True, True)}


def _any2any_items(ds, where: str, label: str, kind: str) -> dict[str, Item]:
    items: dict[str, Item] = {}
    for i, row in enumerate(ds):
        rid, modality = row.get("id"), row.get("modality")
        if rid is None:
            raise BadRowError(where, i + 1, f"{kind} row has no 'id'")
        if modality not in _ANY2ANY_MODALITIES:
            raise BadRowError(where, i + 1, f"{kind} {rid!r}: modality must be one of "
                                            f"{sorted(_ANY2ANY_MODALITIES)}, got {modality!r}")
        want_text, want_image = _ANY2ANY_MODALITIES[modality]
        text = ((row.get("text") or "").strip() or None) if want_text else None
        image = row.get("image") if want_image else None
        if (want_text and text is None) or (want_image and image is None):
            raise BadRowError(where, i + 1, f"{kind} {rid!r}: modality {modality!r} but its "
                                            f"{'text' if want_text and text is None else 'image'} is empty")
        meta = {"image_key": f"{label}:{rid}"} if image is not None else None
        items[str(rid)] = Item(text=text, image=image, id=str(rid), metadata=meta)
    return items


def load_any2any(spec: DatasetSpec, local: Path, split: str = "test") -> EvalDataset:
    """MTEB's multimodal retrieval format (``izhx/UMRB-*``, ``mteb/flickr30k*``): corpus, query, qrels."""
    ref = _hub_ref(spec, local)
    corpus_ds, cwhere = ref.config(("corpus",), ("corpus", split))
    queries_ds, qwhere = ref.config(("query", "queries"), (split,))
    qrels_ds, rwhere = ref.config(("qrels", "default"), (split,))
    corpus = _any2any_items(corpus_ds, cwhere, ref.label, "corpus")
    queries = _any2any_items(queries_ds, qwhere, ref.label, "query")
    qrels = _qrels_rows(qrels_ds, rwhere, queries, corpus)
    return EvalDataset(name=spec.slug, queries={q: queries[q] for q in queries if q in qrels}, corpus=corpus,
                       qrels=qrels, instruction=spec.instruction, task=spec.task, metric=spec.metric,
                       source=ref.label)


def load_beir_hub(spec: DatasetSpec, hub_id: str, local: Path, split: str = "test",
                  qrels_repo: str | None = None, qrels_in_repo: bool = False) -> EvalDataset:
    """A BEIR dataset from the hub (``BeIR/<name>`` corpus/queries configs + ``-qrels`` repo, or mteb layout)."""
    corpus_ds = _hub_call(spec.slug, hub_id, local, _hf_load, hub_id, "corpus", split="corpus")
    queries_ds = _hub_call(spec.slug, hub_id, local, _hf_load, hub_id, "queries", split="queries")
    if qrels_in_repo:
        qrels_ds = _hub_call(spec.slug, hub_id, local, _hf_load, hub_id, "default", split=split)
    else:
        repo = qrels_repo or f"{hub_id}-qrels"
        qrels_ds = _hub_call(spec.slug, repo, local, _hf_load, repo, split=split)
    corpus: dict[str, Item] = {}
    for row in corpus_ds:
        cid = str(row["_id"])
        title, text = (row.get("title") or "").strip(), (row.get("text") or "").strip()
        full = f"{title} {text}".strip()
        if full:
            corpus[cid] = Item(text=full, id=cid)
    queries = {str(r["_id"]): Item(text=r["text"], id=str(r["_id"])) for r in queries_ds if (r.get("text") or "").strip()}
    qrels: dict[str, dict[str, int]] = {}
    dropped = 0
    for r in qrels_ds:
        qid, cid = str(r["query-id"]), str(r["corpus-id"])
        if qid in queries and cid in corpus:
            qrels.setdefault(qid, {})[cid] = int(r["score"])
        else:
            dropped += 1
    if dropped:
        log.warning("%s: dropped %d qrels rows naming ids absent from the hub copy", hub_id, dropped)
    return EvalDataset(name=spec.slug, queries={q: queries[q] for q in queries if q in qrels}, corpus=corpus,
                       qrels=qrels, instruction=spec.instruction, task=spec.task, metric=spec.metric,
                       source=f"hf:{hub_id}")


def mbeir_root(data_root: Path) -> Path:
    env = os.environ.get("GME_DATA_MBEIR_ROOT")
    return Path(env) if env else data_root / "M-BEIR"


def load_mbeir(spec: DatasetSpec, root: Path, local: Path) -> EvalDataset:
    """An M-BEIR task (queries, local candidate pool, qrels) from an M-BEIR checkout at ``root``."""
    opts = spec.options
    needed = [opts["queries"], opts["pool"]]
    missing = [f for f in needed if not (root / f).is_file()]
    if missing:
        def _fetch() -> None:
            from huggingface_hub import hf_hub_download

            for f in [*missing, opts["qrels"]]:
                hf_hub_download(spec.hub_id, f, repo_type="dataset", local_dir=str(root))

        _hub_call(spec.slug, f"{spec.hub_id} -> {root}", local, _fetch)
    corpus: dict[str, Item] = {}
    pool_path = root / opts["pool"]
    for lineno, row in _iter_jsonl(pool_path):
        cid = str(row.get("did"))
        img = row.get("img_path")
        if img and not (root / img).is_file():
            raise DatasetUnavailableError(
                spec.slug, f"M-BEIR images under {root}", local,
                f"{pool_path}: row {lineno}: image not found: {root / img} (download mbeir_images*.tar.gz from "
                f"{spec.hub_id} and extract it into {root})")
        corpus[cid] = Item(text=row.get("txt") or None, image=str(root / img) if img else None, id=cid)
    queries: dict[str, Item] = {}
    qrels: dict[str, dict[str, int]] = {}
    qpath = root / opts["queries"]
    for lineno, row in _iter_jsonl(qpath):
        qid = str(row.get("qid"))
        img = row.get("query_img_path")
        if img and not (root / img).is_file():
            raise DatasetUnavailableError(spec.slug, f"M-BEIR images under {root}", local,
                                          f"{qpath}: row {lineno}: image not found: {root / img}")
        queries[qid] = Item(text=row.get("query_txt") or None, image=str(root / img) if img else None, id=qid)
        for cid in row.get("pos_cand_list") or []:
            if str(cid) in corpus:
                qrels.setdefault(qid, {})[str(cid)] = 1
    qrels_path = root / opts["qrels"]
    if qrels_path.is_file():  # the official judgements win over pos_cand_list
        official: dict[str, dict[str, int]] = {}
        for line in qrels_path.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 4 and parts[0] in queries and parts[2] in corpus:
                official.setdefault(parts[0], {})[parts[2]] = int(float(parts[3]))
        if official:
            qrels = official
    return EvalDataset(name=spec.slug, queries={q: queries[q] for q in queries if q in qrels}, corpus=corpus,
                       qrels=qrels, instruction=spec.instruction, task=spec.task, metric=spec.metric,
                       source=f"mbeir:{root}")


def load_spec(spec: DatasetSpec, data_root: str | Path | None = None) -> list[EvalDataset]:
    """Load a registry dataset: a local copy at ``data_root/<slug>`` first, else its public source.

    Returns one :class:`EvalDataset`, or several for multi-part datasets (CQADupStack's subforums,
    scored as the mean of the parts).
    """
    root = Path(data_root) if data_root is not None else default_data_root()
    local = root / spec.slug
    if is_local_layout(local):
        return [load_local(local, spec=spec, split=spec.options.get("split", "test"))]
    if spec.options.get("subsets"):
        subsets = spec.options["subsets"]
        part_dirs = [local / s.rsplit("-", 1)[-1] for s in subsets]
        if all(is_local_layout(p) for p in part_dirs):
            return [load_local(p, name=f"{spec.slug}/{p.name}", spec=spec) for p in part_dirs]
        return [load_beir_hub(spec, s, local, split=spec.options.get("split", "test"), qrels_in_repo=True)
                for s in subsets]
    if spec.source == "beir":
        return [load_beir_hub(spec, spec.hub_id or "", local, split=spec.options.get("split", "test"),
                              qrels_repo=spec.options.get("qrels_repo"))]
    if spec.source == "vidore-beir":
        return [load_vidore_beir(spec, local, split=spec.options.get("split", "test"))]
    if spec.source == "any2any":
        return [load_any2any(spec, local, split=spec.options.get("split", "test"))]
    if spec.source == "mbeir":
        return [load_mbeir(spec, mbeir_root(root), local)]
    if spec.source == "local-suite":
        raise DatasetUnavailableError(spec.slug, "the local suite", local,
                                      "not built yet (gme_data.evaluation.local_suite.build_local_suite)")
    raise DatasetUnavailableError(spec.slug, "the local layout", local, spec.note or "no public source is wired")
