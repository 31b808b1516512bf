"""The UMRB registry: all 47 datasets of GME's Universal Multimodal Retrieval Benchmark.

Each :class:`DatasetSpec` says what a dataset is (category, task, query/candidate modality), how it
is scored (``metric`` as the paper prints it, ``metric_key`` as :mod:`gme_data.evaluation.metrics`
computes it), which instruction its queries carry and where it comes from: BEIR on the Hugging Face
hub, M-BEIR files from ``TIGER-Lab/M-BEIR``, and the copies GME's own evaluation code uses, each with
the hub ``revision`` it pins and the ``origin`` (``repository@commit:path``) where id and revision
were read: ViDoRe's BEIR-format ``vidore/*_test_beir`` / ``*_test_subsampled_beir`` sets
(``vidore-beir``), GME's ``izhx/UMRB-*`` conversions and MTEB's ``mteb/flickr30k*`` (``any2any``).

Recall in UMRB: the M-BEIR-style tasks (everything scored "Recall@k" in the paper) follow UniIR,
whose ``Recall@k`` is a hit rate (1 if any relevant candidate is in the top k). Those specs therefore
use ``metric_key="hit@k"``. pytrec_eval's ``recall@k`` (fraction of the relevant candidates that are
retrieved) is computed and reported too; the two agree whenever a query has exactly one positive.

Categories follow the UMRB table: ``single-modal`` (T->T, I->I), ``cross-modal`` (T->I, T->VD, I->T)
and ``fused-modal`` (T->IT, IT->T, IT->I, IT->IT). ``visual-document`` is accepted in selections as
an alias for the T->VD task (ViDoRe), which the table files under cross-modal.

Presets: ``umrb`` (all 47), ``umrb-partial`` and ``local`` (:mod:`gme_data.evaluation.local_suite`,
built offline from bundled data; not part of UMRB).

UMRB-Partial is published: the "In partial" column of the UMRB dataset table in the GME paper's
appendix (about 39% of the datasets). That column could not be read for this registry, so the
published membership is unverified for every one of the 47 datasets (:data:`PARTIAL_UNVERIFIED`;
:data:`PARTIAL_PUBLISHED` is empty until someone transcribes it). Until then ``umrb-partial`` runs
:data:`PARTIAL`, gme_data's stand-in of the same size (18 datasets, 38%, every task and category,
the small-corpus members of each task), and reports say so (:data:`PARTIAL_LABEL`).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from gme_data.evaluation.errors import UnknownDatasetError

CATEGORIES: tuple[str, ...] = ("single-modal", "cross-modal", "fused-modal")
TASKS: tuple[str, ...] = ("T->T", "I->I", "T->I", "T->VD", "I->T", "T->IT", "IT->T", "IT->I", "IT->IT")
TASK_CATEGORY: dict[str, str] = {
    "T->T": "single-modal", "I->I": "single-modal",
    "T->I": "cross-modal", "T->VD": "cross-modal", "I->T": "cross-modal",
    "T->IT": "fused-modal", "IT->T": "fused-modal", "IT->I": "fused-modal", "IT->IT": "fused-modal",
}
#: Category aliases accepted by :func:`select` (-> the tasks they stand for).
CATEGORY_ALIASES: dict[str, tuple[str, ...]] = {
    "single": ("T->T", "I->I"), "cross": ("T->I", "T->VD", "I->T"),
    "fused": ("T->IT", "IT->T", "IT->I", "IT->IT"), "visual-document": ("T->VD",), "vd": ("T->VD",),
}
_MODALITY = {"T": "text", "I": "image", "IT": "fused", "VD": "image"}
#: Where queries/candidates of a task come from in a UMRB query/candidate pair.
#: ``vidore-beir``: ViDoRe's BEIR-format copies (configs ``queries``/``corpus``/``qrels``);
#: ``any2any``: MTEB's multimodal retrieval format (configs ``corpus``/``query``/``qrels``, rows with
#: ``id``, ``modality``, ``text``, ``image``), used by ``izhx/UMRB-*`` and ``mteb/flickr30k*``.
SOURCE_KINDS = ("beir", "mbeir", "vidore-beir", "any2any", "local", "local-suite")

#: Where GME's evaluation code names its dataset copies (repository@commit:path).
IZHX_VIDORE_ORIGIN = ("izhx/mteb@ff74380542e3942b7e60e782636dc2aa7a4c0d3e:"
                      "mteb/tasks/Image/Any2AnyRetrieval/eng/VidoreBenchRetrieval.py")
IZHX_UMRB_ORIGIN = "izhx/mteb@24c37098b71b8cf81922098d3dd11fed51205889:mteb/tasks/Image/Any2AnyRetrieval/eng/{}.py"
MTEB_FLICKR_ORIGIN = "embeddings-benchmark/mteb@a905523d0111f999360b312bd4a601a0a97a0e1c:mteb/tasks/retrieval/eng/{}.py"

_CQA_SUBFORUMS = ("android", "english", "gaming", "gis", "mathematica", "physics", "programmers", "stats",
                  "tex", "unix", "webmasters", "wordpress")


@dataclass(frozen=True)
class DatasetSpec:
    """One evaluation dataset: identity, task, scoring and source."""

    slug: str
    name: str
    task: str
    metric: str
    source: str
    hub_id: str | None = None
    options: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    note: str = ""
    instruction_override: str | None = None
    #: hub revision (commit) of ``hub_id`` that GME's code pins; ``None``: unpinned (latest)
    revision: str | None = None
    #: where ``hub_id``/``revision`` were read (``repository@commit:path``)
    origin: str = ""

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"{self.slug}: unknown task {self.task!r}")
        if self.source not in SOURCE_KINDS:
            raise ValueError(f"{self.slug}: unknown source {self.source!r}")

    @property
    def category(self) -> str:
        return TASK_CATEGORY[self.task]

    @property
    def query_modality(self) -> str:
        return _MODALITY[self.task.split("->")[0]]

    @property
    def candidate_modality(self) -> str:
        return _MODALITY[self.task.split("->")[1]]

    @property
    def metric_key(self) -> str:
        """The metric computed for the headline score (Recall@k of UniIR-style tasks -> ``hit@k``)."""
        kind, k = self.metric.lower().split("@")
        return f"{'hit' if kind == 'recall' else kind}@{k}"

    @property
    def instruction(self) -> str:
        """The query instruction (from :mod:`gme_data.retrieval.instructions` when it knows the slug)."""
        if self.instruction_override:
            return self.instruction_override
        return instruction_for(self.slug, self.task)

    @property
    def instruction_set(self) -> str:
        """Which instruction set :attr:`instruction` belongs to (reports print it beside the score)."""
        if self.instruction_override:
            return "dataset's own"
        try:
            from gme_data.retrieval import instructions as _ins
        except ImportError:  # pragma: no cover - retrieval package absent
            return "gme_data per-task default"
        return _ins.INSTRUCTION_SET if self.slug in _ins.INSTRUCTIONS else "gme_data per-task default"

    def to_dict(self) -> dict[str, Any]:
        return {"slug": self.slug, "name": self.name, "category": self.category, "task": self.task,
                "query_modality": self.query_modality, "candidate_modality": self.candidate_modality,
                "metric": self.metric, "metric_key": self.metric_key, "source": self.source,
                "hub_id": self.hub_id, "revision": self.revision, "origin": self.origin,
                "instruction": self.instruction, "instruction_set": self.instruction_set,
                "partial": self.slug in PARTIAL, "note": self.note}


def instruction_for(slug: str, task: str) -> str:
    """Query instruction for ``slug``: the retrieval package's table, else its per-task default."""
    try:
        from gme_data.retrieval import instructions as _ins
    except ImportError:  # pragma: no cover - retrieval package absent
        return _FALLBACK_INSTRUCTIONS[task]
    if slug in getattr(_ins, "INSTRUCTIONS", {}):
        return _ins.INSTRUCTIONS[slug]
    defaults = getattr(_ins, "DEFAULT_INSTRUCTIONS", {})
    return defaults.get(task, _FALLBACK_INSTRUCTIONS[task])


_FALLBACK_INSTRUCTIONS = {
    "T->T": "Given a query, retrieve relevant passages that answer the query.",
    "I->I": "Find an image that looks similar to the given image.",
    "T->I": "Find an image that matches the given text.",
    "T->VD": "Find a screenshot of a document page that answers the user's question.",
    "I->T": "Find a text that describes the given image.",
    "T->IT": "Find an image with a description that matches the given text.",
    "IT->T": "Find a text that answers the question about the given image.",
    "IT->I": "Find an image that matches the given image and text.",
    "IT->IT": "Find an image with a description that answers the question about the given image.",
}


def _beir(slug: str, name: str, hub: str, split: str = "test", **opts: Any) -> DatasetSpec:
    return DatasetSpec(slug, name, "T->T", "NDCG@10", "beir", hub,
                       {"qrels_repo": f"{hub}-qrels", "split": split, **opts})


def _mbeir(slug: str, name: str, task: str, metric: str, mbeir_name: str, task_id: int,
           pool_suffix: str = "") -> DatasetSpec:
    stem = f"mbeir_{mbeir_name}_task{task_id}"
    return DatasetSpec(slug, name, task, metric, "mbeir", "TIGER-Lab/M-BEIR", {
        "queries": f"query/test/{stem}_test.jsonl",
        "pool": f"cand_pool/local/{stem}{pool_suffix}_cand_pool.jsonl",
        "qrels": f"qrels/test/{stem}_test_qrels.txt",
    }, note=f"M-BEIR {stem} (local pool)")


def _vidore(slug: str, name: str, hub: str, revision: str) -> DatasetSpec:
    return DatasetSpec(slug, name, "T->VD", "NDCG@5", "vidore-beir", hub, {"split": "test"},
                       note="ViDoRe v1, BEIR-format copy as GME's code evaluates it", revision=revision,
                       origin=IZHX_VIDORE_ORIGIN)


def _any2any(slug: str, name: str, task: str, metric: str, hub: str, revision: str, origin: str,
             note: str) -> DatasetSpec:
    return DatasetSpec(slug, name, task, metric, "any2any", hub, {"split": "test"}, note=note, revision=revision,
                       origin=origin)

UMRB: tuple[DatasetSpec, ...] = (
    # ---- single-modal: T->T (BEIR, NDCG@10) + WebQA text part (Recall@5)
    _beir("arguana", "ArguAna", "BeIR/arguana"),
    _beir("climate_fever", "Climate-FEVER", "BeIR/climate-fever"),
    DatasetSpec("cqadupstack", "CQADupStack", "T->T", "NDCG@10", "beir", "mteb/cqadupstack",
                {"subsets": [f"mteb/cqadupstack-{s}" for s in _CQA_SUBFORUMS], "qrels_in_repo": True,
                 "split": "test"},
                note="mean over the 12 StackExchange subforums, as BEIR reports it"),
    _beir("dbpedia", "DBPedia", "BeIR/dbpedia-entity"),
    _beir("fever", "FEVER", "BeIR/fever"),
    _beir("fiqa", "FiQA2018", "BeIR/fiqa"),
    _beir("hotpotqa", "HotpotQA", "BeIR/hotpotqa"),
    _beir("msmarco", "MSMARCO", "BeIR/msmarco", split="dev"),
    _beir("nfcorpus", "NFCorpus", "BeIR/nfcorpus"),
    _beir("nq", "NQ", "BeIR/nq"),
    _beir("quora", "Quora", "BeIR/quora"),
    _beir("scidocs", "SCIDOCS", "BeIR/scidocs"),
    _beir("scifact", "SciFact", "BeIR/scifact"),
    _beir("touche2020", "Touche2020", "BeIR/webis-touche2020"),
    _beir("trec_covid", "TREC-COVID", "BeIR/trec-covid"),
    _mbeir("webqa_t2t", "WebQA", "T->T", "Recall@5", "webqa", 1),
    # ---- single-modal: I->I
    _mbeir("nights", "NIGHTS", "I->I", "Recall@5", "nights", 4),
    # ---- cross-modal: T->I
    _mbeir("visualnews_t2i", "VisualNews", "T->I", "Recall@5", "visualnews", 0),
    _mbeir("mscoco_t2i", "MSCOCO", "T->I", "Recall@5", "mscoco", 0, pool_suffix="_test"),
    _any2any("flickr30k_t2i", "Flickr30k", "T->I", "Recall@5", "mteb/flickr30kt2i",
             "e819702b287bfbe084e129a61f308a802b7c108e", MTEB_FLICKR_ORIGIN.format("flickr30k_t2i_retrieval"),
             "Flickr30k 1K test split; MTEB copy (GME's code read it as isaacchung/flickr30kt2i, same revision)"),
    _mbeir("fashion200k_t2i", "Fashion200K", "T->I", "Recall@10", "fashion200k", 0),
    # ---- cross-modal: T->VD (ViDoRe v1, NDCG@5)
    _vidore("vidore_tatdqa", "TAT-DQA", "vidore/tatdqa_test_beir",
            "5feb5630fdff4d8d189ffedb2dba56862fdd45c0"),
    _vidore("vidore_arxivqa", "ArxivQA", "vidore/arxivqa_test_subsampled_beir",
            "7d94d570960eac2408d3baa7a33f9de4822ae3e4"),
    _vidore("vidore_docvqa", "DocVQA", "vidore/docvqa_test_subsampled_beir",
            "162ba2fc1a8437eda8b6c37b240bc1c0f0deb092"),
    _vidore("vidore_infovqa", "InfoVQA", "vidore/infovqa_test_subsampled_beir",
            "b802cc5fd6c605df2d673a963667d74881d2c9a4"),
    _vidore("vidore_shift_project", "Shift Project", "vidore/shiftproject_test_beir",
            "84a382e05c4473fed9cff2bbae95fe2379416117"),
    _vidore("vidore_ai", "AI", "vidore/syntheticDocQA_artificial_intelligence_test_beir",
            "2d9ebea5a1c6e9ef4a3b902a612f605dca11261c"),
    _vidore("vidore_government_reports", "Government Reports", "vidore/syntheticDocQA_government_reports_test_beir",
            "b4909afa930f81282fd20601e860668073ad02aa"),
    _vidore("vidore_healthcare", "Healthcare", "vidore/syntheticDocQA_healthcare_industry_test_beir",
            "f9e25d5b6e13e1ad9f5c3cce202565031b3ab164"),
    _vidore("vidore_energy", "Energy", "vidore/syntheticDocQA_energy_test_beir",
            "9935aadbad5c8deec30910489db1b2c7133ae7a7"),
    _vidore("vidore_tabfquad", "TabFQuAD", "vidore/tabfquad_test_subsampled_beir",
            "61a2224bcd29b7b261a4892ff4c8bea353527a31"),
    # ---- cross-modal: I->T
    _mbeir("visualnews_i2t", "VisualNews", "I->T", "Recall@5", "visualnews", 3),
    _mbeir("mscoco_i2t", "MSCOCO", "I->T", "Recall@5", "mscoco", 3, pool_suffix="_test"),
    _any2any("flickr30k_i2t", "Flickr30k", "I->T", "Recall@5", "mteb/flickr30ki2t",
             "e26fbfcb4532ab61e3c8512fdf3dd9008f2575bd", MTEB_FLICKR_ORIGIN.format("flickr30k_i2t_retrieval"),
             "Flickr30k 1K test split; MTEB copy (GME's code read isaacchung/flickr30ki2t "
             "@6984df6bd4380034e7766d9a992d8907df363efb)"),
    _mbeir("fashion200k_i2t", "Fashion200K", "I->T", "Recall@10", "fashion200k", 3),
    # ---- fused-modal: T->IT
    _mbeir("webqa_t2it", "WebQA", "T->IT", "Recall@5", "webqa", 2),
    _mbeir("edis", "EDIS", "T->IT", "Recall@5", "edis", 2),
    # ---- fused-modal: IT->T
    _mbeir("oven_it2t", "OVEN", "IT->T", "Recall@5", "oven", 6),
    _mbeir("infoseek_it2t", "InfoSeek", "IT->T", "Recall@5", "infoseek", 6),
    _any2any("remuq", "ReMuQ", "IT->T", "Recall@5", "izhx/UMRB-ReMuQ", "f0bd5955d2897bd1bed56546e88082d966c90a80",
             IZHX_UMRB_ORIGIN.format("ReMuQIT2TRetrieval"), "GME's UMRB conversion"),
    _any2any("llava", "LLaVA", "IT->T", "Recall@5", "izhx/UMRB-LLaVA", "2a5ed414aab388d8cdd244ba2cf8c8960df4d44d",
             IZHX_UMRB_ORIGIN.format("LLaVAIT2TRetrieval"), "GME's UMRB conversion"),
    _any2any("okvqa", "OK-VQA", "IT->T", "Recall@10", "izhx/UMRB-OKVQA", "96a84a043f5465893670cf616f90e64086c0417a",
             IZHX_UMRB_ORIGIN.format("OKVQAIT2TRetrieval"), "GME's UMRB conversion"),
    # ---- fused-modal: IT->I
    _mbeir("cirr", "CIRR", "IT->I", "Recall@5", "cirr", 7),
    _mbeir("fashioniq", "FashionIQ", "IT->I", "Recall@10", "fashioniq", 7),
    # ---- fused-modal: IT->IT
    _mbeir("oven_it2it", "OVEN", "IT->IT", "Recall@5", "oven", 8),
    _any2any("evqa", "E-VQA", "IT->IT", "Recall@5", "izhx/UMRB-EncyclopediaVQA",
             "d6eae4f06e260664eb3f276fd1bdb5d4d4c9f32b", IZHX_UMRB_ORIGIN.format("EncyclopediaVQAIT2ITRetrieval"),
             "GME's UMRB conversion"),
    _mbeir("infoseek_it2it", "InfoSeek", "IT->IT", "Recall@5", "infoseek", 8),
)

#: UMRB-Partial membership transcribed from the paper's "In partial" column (slug -> member?); empty:
#: the column could not be read (see the module docstring).
PARTIAL_PUBLISHED: dict[str, bool] = {}
#: gme_data's stand-in for UMRB-Partial (documented above): 18 of 47 datasets (38%), every task and category.
PARTIAL: tuple[str, ...] = (
    "arguana", "nfcorpus", "scifact", "fiqa", "webqa_t2t",  # T->T
    "nights",  # I->I
    "mscoco_t2i", "fashion200k_t2i",  # T->I
    "vidore_arxivqa", "vidore_docvqa", "vidore_tabfquad",  # T->VD
    "mscoco_i2t",  # I->T
    "webqa_t2it", "edis",  # T->IT
    "remuq", "okvqa",  # IT->T
    "cirr",  # IT->I
    "oven_it2it",  # IT->IT
)

#: The offline local suite (see :mod:`gme_data.evaluation.local_suite`); not part of UMRB. Its pools are
#: tiny (12-60 candidates), so single-target sets report Recall@1 where UMRB reports Recall@5: on the
#: 40-candidate fused sets a ranking that uses only one modality of the query or the candidates already
#: reaches 100 at Recall@5 (hit@5), but stays near 50-70 at Recall@1.
LOCAL_SUITE: tuple[DatasetSpec, ...] = (
    DatasetSpec("local_docs_t2t", "Docstrings", "T->T", "NDCG@10", "local-suite",
                note="Python stdlib module summaries -> docstring bodies"),
    DatasetSpec("local_easyvqa_i2i", "easy-VQA shapes", "I->I", "NDCG@10", "local-suite",
                note="easy-VQA image -> images with the same shape and colour"),
    DatasetSpec("local_easyvqa_t2i", "easy-VQA captions", "T->I", "NDCG@10", "local-suite",
                note="colour+shape caption -> easy-VQA images"),
    DatasetSpec("local_photos_t2i", "scikit-image photos", "T->I", "Recall@1", "local-suite",
                note="hand-written captions -> bundled scikit-image/scikit-learn photos"),
    DatasetSpec("local_docpages_t2vd", "Rendered pages", "T->VD", "NDCG@5", "local-suite",
                note="module summary -> PIL-rendered docstring page"),
    DatasetSpec("local_photos_i2t", "scikit-image photos", "I->T", "Recall@1", "local-suite",
                note="bundled photos -> hand-written captions"),
    DatasetSpec("local_photos_t2it", "scikit-image photo pairs", "T->IT", "Recall@1", "local-suite",
                note="paraphrased description -> (photo, title) pairs, with title-swapped distractor pairs",
                instruction_override="Find a photo with its title that matches the given description."),
    DatasetSpec("local_easyvqa_it2t", "easy-VQA QA", "IT->T", "Recall@1", "local-suite",
                note="easy-VQA image + question -> answer"),
    DatasetSpec("local_easyvqa_it2i", "easy-VQA edits", "IT->I", "Recall@1", "local-suite",
                note="composed image retrieval: reference image + colour/shape edit -> images showing the edit",
                instruction_override="Retrieve an image of a shape that aligns with the modification "
                                     "instructions of the provided image."),
    DatasetSpec("local_easyvqa_it2it", "easy-VQA fact cards", "IT->IT", "Recall@1", "local-suite",
                note="image + question -> the (image, fact) card of the same coloured shape stating the answer",
                instruction_override="Find an image and fact card about the same shape that answers my "
                                     "question about this image."),
)

REGISTRY: dict[str, DatasetSpec] = {s.slug: s for s in UMRB}
#: Datasets whose published UMRB-Partial membership is unverified (all 47 while PARTIAL_PUBLISHED is empty).
PARTIAL_UNVERIFIED: tuple[str, ...] = tuple(s for s in REGISTRY if s not in PARTIAL_PUBLISHED)
#: How reports name the ``umrb-partial`` preset.
PARTIAL_LABEL = ("gme_data stand-in, not the published UMRB-Partial (membership unverified for "
                 f"{len(PARTIAL_UNVERIFIED)} of {len(UMRB)} datasets)" if PARTIAL_UNVERIFIED
                 else "published UMRB-Partial")
LOCAL_REGISTRY: dict[str, DatasetSpec] = {s.slug: s for s in LOCAL_SUITE}
PRESETS: dict[str, tuple[str, ...]] = {
    "umrb": tuple(REGISTRY),
    "umrb-partial": PARTIAL,
    "local": tuple(LOCAL_REGISTRY),
}
_PRESET_ALIASES = {"full": "umrb", "all": "umrb", "partial": "umrb-partial", "umrb_partial": "umrb-partial"}


def get_spec(slug: str) -> DatasetSpec:
    """The spec of ``slug`` (UMRB or local suite); unknown slugs raise with suggestions."""
    if slug in REGISTRY:
        return REGISTRY[slug]
    if slug in LOCAL_REGISTRY:
        return LOCAL_REGISTRY[slug]
    known = list(REGISTRY) + list(LOCAL_REGISTRY)
    close = difflib.get_close_matches(slug, known, n=3, cutoff=0.5)
    raise UnknownDatasetError(f"unknown dataset {slug!r}" + (f" (did you mean {', '.join(close)}?)" if close else ""))


def _norm_task(task: str) -> str:
    t = task.strip().upper().replace("→", "->").replace("2", "->").replace(" ", "")
    t = {"T->VD": "T->VD"}.get(t, t)
    if t not in TASKS:
        raise UnknownDatasetError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    return t


def _norm_category(cat: str) -> tuple[str, ...]:
    c = cat.strip().lower().replace("_", "-")
    if c in CATEGORIES:
        return tuple(t for t in TASKS if TASK_CATEGORY[t] == c)
    if c.endswith("-modal") and c[: -len("-modal")] in CATEGORY_ALIASES:
        c = c[: -len("-modal")]
    if c in CATEGORY_ALIASES:
        return CATEGORY_ALIASES[c]
    raise UnknownDatasetError(f"unknown category {cat!r}; expected one of {', '.join(CATEGORIES)} "
                              f"(or {', '.join(CATEGORY_ALIASES)})")


def select(preset: str | None = None, tasks: Iterable[str] | None = None,
           categories: Iterable[str] | None = None, names: Iterable[str] | None = None) -> list[DatasetSpec]:
    """Datasets by preset (``umrb``, ``umrb-partial``, ``local``), then filtered by task/category.

    ``names`` (slugs) select datasets directly; combined with a preset they must belong to it.
    With nothing given, all 47 UMRB datasets. Order follows the registry.
    """
    if preset is not None:
        key = _PRESET_ALIASES.get(preset.lower(), preset.lower())
        if key not in PRESETS:
            raise UnknownDatasetError(f"unknown suite {preset!r}; expected one of {', '.join(PRESETS)}")
        pool = [get_spec(s) for s in PRESETS[key]]
    else:
        pool = list(UMRB)
    if names:
        wanted = [get_spec(n.strip()) for n in names if n.strip()]
        if preset is None:
            pool = wanted
        else:
            outside = [w.slug for w in wanted if w not in pool]
            if outside:
                raise UnknownDatasetError(f"datasets not in suite {preset!r}: {', '.join(outside)}")
            pool = [p for p in pool if p in wanted]
    allowed: set[str] | None = None
    if tasks:
        allowed = {_norm_task(t) for t in tasks}
    if categories:
        cat_tasks = {t for c in categories for t in _norm_category(c)}
        allowed = cat_tasks if allowed is None else allowed & cat_tasks
    if allowed is not None:
        pool = [p for p in pool if p.task in allowed]
    if not pool:
        raise UnknownDatasetError("the selection matches no dataset")
    order = {slug: i for i, slug in enumerate([*REGISTRY, *LOCAL_REGISTRY])}
    return sorted(dict.fromkeys(pool), key=lambda s: order[s.slug])


def counts_by_task(specs: Iterable[DatasetSpec] = UMRB) -> dict[str, int]:
    """Number of datasets per task (in :data:`TASKS` order, zero counts omitted)."""
    specs = list(specs)
    return {t: n for t in TASKS if (n := sum(s.task == t for s in specs))}
