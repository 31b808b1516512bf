"""GME's own query instructions for the 47 UMRB datasets (with their sources), plus per-modality defaults.

Queries carry a task instruction in the system turn of GME's template; candidates always get
:data:`CANDIDATE_INSTRUCTION`. Keys are stable dataset slugs (lower case, ``_`` separated); a
dataset that appears in several UMRB tasks gets a task suffix (``_t2i``, ``_i2t``, ``_t2t``,
``_t2it``, ``_it2t``, ``_it2it``). ViDoRe datasets are prefixed ``vidore_``. The slugs:

- T->T (BEIR, NDCG@10): arguana, climate_fever, cqadupstack, dbpedia, fever, fiqa, hotpotqa, msmarco,
  nfcorpus, nq, quora, scidocs, scifact, touche2020, trec_covid; WebQA text part: webqa_t2t
- I->I: nights
- T->I: visualnews_t2i, mscoco_t2i, flickr30k_t2i, fashion200k_t2i
- T->VD (ViDoRe v1): vidore_tatdqa, vidore_arxivqa, vidore_docvqa, vidore_infovqa, vidore_shift_project,
  vidore_ai, vidore_government_reports, vidore_healthcare, vidore_energy, vidore_tabfquad
- I->T: visualnews_i2t, mscoco_i2t, flickr30k_i2t, fashion200k_i2t
- T->IT: webqa_t2it, edis
- IT->T: oven_it2t, infoseek_it2t, remuq, llava, okvqa
- IT->I: cirr, fashioniq
- IT->IT: oven_it2it, evqa, infoseek_it2it

The strings are GME's own, verbatim (typos included): the ``TASKNAME2INSTRUCTIONS`` table that GME's
first author contributed to MTEB (:data:`SOURCE`), looked up by the MTEB task name recorded beside
each dataset (:attr:`DatasetInstruction.mteb_task`). GME's MTEB wrapper (``get_gme_instruction`` in
``mteb/models/gme_models.py``, same commit) appends a ``.`` to a string that lacks one (the E5-style
BEIR strings), so the table here holds the strings as GME ran them. CQADupStack's twelve
``CQADupstack*Retrieval`` tasks are not in that table; the wrapper then falls back to MTEB's
``DEFAULT_PROMPTS["Retrieval"]`` ("Retrieve text based on user query."), which is recorded here as
the reference choice. :data:`INSTRUCTION_SET` names this set in evaluation reports.
"""

from __future__ import annotations

import difflib
from typing import NamedTuple

from gme_data.errors import InvalidInputError

#: The instruction every candidate (and every instruction-less item) gets.
CANDIDATE_INSTRUCTION = "You are a helpful assistant."


class InstructionSource(NamedTuple):
    """Where a string was read: repository, path inside it, commit, and the name looked up there."""

    repository: str
    path: str
    commit: str
    lookup: str


#: GME's evaluation code in MTEB: PR #1635 "[MIEB] Add code for GME models" by Xin Zhang (GME's first
#: author; its commits "Add GME", "Fix infoseek prompts", "Merge instructions"), squash-merged as this commit.
SOURCE = InstructionSource("embeddings-benchmark/mteb", "mteb/models/instructions.py",
                           "075873f9c954d29aac927782bd30219c5dbd84ce", "TASKNAME2INSTRUCTIONS")
#: The rule that appends the final "." and the fallback for tasks missing from the table.
WRAPPER_SOURCE = InstructionSource("embeddings-benchmark/mteb", "mteb/models/gme_models.py",
                                   "075873f9c954d29aac927782bd30219c5dbd84ce", "get_gme_instruction")
#: The fallback GME's wrapper used for CQADupStack (not in the table).
FALLBACK_SOURCE = InstructionSource("embeddings-benchmark/mteb", "mteb/models/instructions.py",
                                    "075873f9c954d29aac927782bd30219c5dbd84ce", 'DEFAULT_PROMPTS["Retrieval"]')
#: Name of this instruction set, written into evaluation reports beside every score.
INSTRUCTION_SET = "gme-mteb@075873f9"


class DatasetInstruction(NamedTuple):
    slug: str
    dataset: str  # display name as in the UMRB table
    task: str  # UMRB task label: "T->T", "I->I", "T->I", "T->VD", "I->T", "T->IT", "IT->T", "IT->I", "IT->IT"
    instruction: str  # as GME ran it (the table's string, "." appended when missing)
    mteb_task: str  # the key looked up in SOURCE (or the MTEB task family for a fallback)

    @property
    def source(self) -> InstructionSource:
        """Where :attr:`instruction` was read (repository, path, commit, lookup)."""
        if self.slug == "cqadupstack":
            return FALLBACK_SOURCE
        return SOURCE._replace(lookup=f'{SOURCE.lookup}["{self.mteb_task}"]')


_VIDORE = "Find a screenshot that relevant to the user's question."  # sic: GME's string
_D = DatasetInstruction

_TABLE: tuple[DatasetInstruction, ...] = (
    # single-modal T->T (BEIR): E5's strings, "." appended by get_gme_instruction
    _D("arguana", "ArguAna", "T->T", "Given a claim, find documents that refute the claim.", "ArguAna"),
    _D("climate_fever", "Climate-FEVER", "T->T",
       "Given a claim about climate change, retrieve documents that support or refute the claim.", "ClimateFEVER"),
    _D("cqadupstack", "CQADupStack", "T->T", "Retrieve text based on user query.", "CQADupstack*Retrieval"),
    _D("dbpedia", "DBPedia", "T->T", "Given a query, retrieve relevant entity descriptions from DBPedia.", "DBPedia"),
    _D("fever", "FEVER", "T->T", "Given a claim, retrieve documents that support or refute the claim.", "FEVER"),
    _D("fiqa", "FiQA2018", "T->T",
       "Given a financial question, retrieve user replies that best answer the question.", "FiQA2018"),
    _D("hotpotqa", "HotpotQA", "T->T",
       "Given a multi-hop question, retrieve documents that can help answer the question.", "HotpotQA"),
    _D("msmarco", "MSMARCO", "T->T",
       "Given a web search query, retrieve relevant passages that answer the query.", "MSMARCO"),
    _D("nfcorpus", "NFCorpus", "T->T",
       "Given a question, retrieve relevant documents that best answer the question.", "NFCorpus"),
    _D("nq", "NQ", "T->T", "Given a question, retrieve Wikipedia passages that answer the question.", "NQ"),
    _D("quora", "Quora", "T->T",
       "Given a question, retrieve questions that are semantically equivalent to the given question.",
       "QuoraRetrieval"),
    _D("scidocs", "SCIDOCS", "T->T",
       "Given a scientific paper title, retrieve paper abstracts that are cited by the given paper.", "SCIDOCS"),
    _D("scifact", "SciFact", "T->T",
       "Given a scientific claim, retrieve documents that support or refute the claim.", "SciFact"),
    _D("touche2020", "Touche2020", "T->T",
       "Given a question, retrieve detailed and persuasive arguments that answer the question.", "Touche2020"),
    _D("trec_covid", "TREC-COVID", "T->T",
       "Given a query on COVID-19, retrieve documents that answer the query.", "TRECCOVID"),
    _D("webqa_t2t", "WebQA", "T->T",
       "Retrieve passages from Wikipedia that provide answers to the following question.", "WebQAT2TRetrieval"),
    # single-modal I->I
    _D("nights", "NIGHTS", "I->I", "Find a day-to-day image that looks similar to the provided image.",
       "NIGHTSI2IRetrieval"),
    # cross-modal T->I
    _D("visualnews_t2i", "VisualNews", "T->I", "Identify the news-related image in line with the described event.",
       "VisualNewsT2IRetrieval"),
    _D("mscoco_t2i", "MSCOCO", "T->I", "Identify the image showcasing the described everyday scene.",
       "MSCOCOT2IRetrieval"),
    _D("flickr30k_t2i", "Flickr30k", "T->I", "Find an image that matches the given caption.",
       "Flickr30kT2IRetrieval"),
    _D("fashion200k_t2i", "Fashion200K", "T->I",
       "Based on the following fashion description, retrieve the best matching image.", "Fashion200kT2IRetrieval"),
    # cross-modal T->VD (ViDoRe v1)
    _D("vidore_tatdqa", "TAT-DQA", "T->VD", _VIDORE, "VidoreTatdqaRetrieval"),
    _D("vidore_arxivqa", "ArxivQA", "T->VD", _VIDORE, "VidoreArxivQARetrieval"),
    _D("vidore_docvqa", "DocVQA", "T->VD", _VIDORE, "VidoreDocVQARetrieval"),
    _D("vidore_infovqa", "InfoVQA", "T->VD", _VIDORE, "VidoreInfoVQARetrieval"),
    _D("vidore_shift_project", "Shift Project", "T->VD", _VIDORE, "VidoreShiftProjectRetrieval"),
    _D("vidore_ai", "AI", "T->VD", _VIDORE, "VidoreSyntheticDocQAAIRetrieval"),
    _D("vidore_government_reports", "Government Reports", "T->VD", _VIDORE,
       "VidoreSyntheticDocQAGovernmentReportsRetrieval"),
    _D("vidore_healthcare", "Healthcare", "T->VD", _VIDORE, "VidoreSyntheticDocQAHealthcareIndustryRetrieval"),
    _D("vidore_energy", "Energy", "T->VD", _VIDORE, "VidoreSyntheticDocQAEnergyRetrieval"),
    _D("vidore_tabfquad", "TabFQuAD", "T->VD", _VIDORE, "VidoreTabfquadRetrieval"),
    # cross-modal I->T
    _D("visualnews_i2t", "VisualNews", "I->T", "Find a caption for the news in the given photo.",
       "VisualNewsI2TRetrieval"),
    _D("mscoco_i2t", "MSCOCO", "I->T", "Find an image caption describing the following everyday image.",
       "MSCOCOI2TRetrieval"),
    _D("flickr30k_i2t", "Flickr30k", "I->T", "Find an image caption describing the following image.",
       "Flickr30kI2TRetrieval"),
    # sic: GME's table gives Fashion200kI2TRetrieval the T->I string
    _D("fashion200k_i2t", "Fashion200K", "I->T",
       "Based on the following fashion description, retrieve the best matching image.", "Fashion200kI2TRetrieval"),
    # fused-modal T->IT
    _D("webqa_t2it", "WebQA", "T->IT", "Find a Wikipedia image that answers this question.", "WebQAT2ITRetrieval"),
    _D("edis", "EDIS", "T->IT", "Identify the news photo for the given caption.", "EDIST2ITRetrieval"),
    # fused-modal IT->T
    _D("oven_it2t", "OVEN", "IT->T",
       "Retrieve a Wikipedia paragraph that provides an answer to the given query about the image.",
       "OVENIT2TRetrieval"),
    _D("infoseek_it2t", "InfoSeek", "IT->T",
       "Find a paragraph from Wikipedia that answers my question about this image.", "InfoSeekIT2TRetrieval"),
    _D("remuq", "ReMuQ", "IT->T",
       "Retrieve a fact-based paragraph that provides an answer to the given query about the image.",
       "ReMuQIT2TRetrieval"),
    _D("llava", "LLaVA", "IT->T",  # sic: "decription"
       "Provide a specific decription of the image along with the following question.", "LLaVAIT2TRetrieval"),
    _D("okvqa", "OK-VQA", "IT->T",
       "Retrieve documents that provide an answer to the question alongside the image.", "OKVQAIT2TRetrieval"),
    # fused-modal IT->I
    _D("cirr", "CIRR", "IT->I",
       "Retrieve a day-to-day image that aligns with the modification instructions of the provided image.",
       "CIRRIT2IRetrieval"),
    _D("fashioniq", "FashionIQ", "IT->I",
       "Find a fashion image that aligns with the reference image and style note.", "FashionIQIT2IRetrieval"),
    # fused-modal IT->IT
    _D("oven_it2it", "OVEN", "IT->IT",
       "Retrieve a Wikipedia image-description pair that provides evidence for the question of this image.",
       "OVENIT2ITRetrieval"),
    _D("evqa", "E-VQA", "IT->IT",
       "Obtain illustrated documents that correspond to the inquiry alongside the provided image.",
       "EncyclopediaVQAIT2ITRetrieval"),
    _D("infoseek_it2it", "InfoSeek", "IT->IT",
       "Find an image and subject description from Wikipedia that answers my question about this image.",
       "InfoSeekIT2ITRetrieval"),
)

#: slug -> full record (dataset name, UMRB task, instruction).
DATASETS: dict[str, DatasetInstruction] = {d.slug: d for d in _TABLE}
#: slug -> query instruction.
INSTRUCTIONS: dict[str, str] = {d.slug: d.instruction for d in _TABLE}
#: slug -> where its instruction was read.
SOURCES: dict[str, InstructionSource] = {d.slug: d.source for d in _TABLE}

#: Default query instruction per modality combination (query -> candidate); "T->VD" = visual documents.
DEFAULT_INSTRUCTIONS: dict[str, str] = {
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


def get_instruction(slug: str) -> str:
    """The query instruction of UMRB dataset ``slug``; unknown slugs raise a named error with suggestions."""
    if slug in INSTRUCTIONS:
        return INSTRUCTIONS[slug]
    close = difflib.get_close_matches(str(slug).lower(), list(INSTRUCTIONS), n=3, cutoff=0.5)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise InvalidInputError(f"unknown UMRB dataset slug {slug!r}{hint}; see gme_data.retrieval.instructions")


def default_instruction(combination: str) -> str:
    """The default query instruction for a modality combination such as ``"T->I"``."""
    if combination not in DEFAULT_INSTRUCTIONS:
        raise InvalidInputError(
            f"unknown modality combination {combination!r}; expected one of {sorted(DEFAULT_INSTRUCTIONS)}"
        )
    return DEFAULT_INSTRUCTIONS[combination]
