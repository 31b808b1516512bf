"""GME-style task instructions for the 47 UMRB datasets, plus per-modality defaults.

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

The wording follows the style of the instructions GME inherits (E5-style BEIR instructions,
UniIR/M-BEIR task instructions); these strings were written here, not copied from a release,
so re-check them against the published evaluation code before claiming score parity.
"""

from __future__ import annotations

import difflib
from typing import NamedTuple

from gme_data.errors import InvalidInputError

#: The instruction every candidate (and every instruction-less item) gets.
CANDIDATE_INSTRUCTION = "You are a helpful assistant."


class DatasetInstruction(NamedTuple):
    slug: str
    dataset: str  # display name as in the UMRB table
    task: str  # UMRB task label: "T->T", "I->I", "T->I", "T->VD", "I->T", "T->IT", "IT->T", "IT->I", "IT->IT"
    instruction: str


_VIDORE = "Find a screenshot of a document page that answers the user's question."

_TABLE: tuple[DatasetInstruction, ...] = (
    # single-modal T->T (BEIR)
    DatasetInstruction("arguana", "ArguAna", "T->T", "Given a claim, find documents that refute the claim."),
    DatasetInstruction("climate_fever", "Climate-FEVER", "T->T",
                       "Given a claim about climate change, retrieve documents that support or refute the claim."),
    DatasetInstruction("cqadupstack", "CQADupStack", "T->T",
                       "Given a question, retrieve detailed question descriptions from Stackexchange that are "
                       "duplicates to the given question."),
    DatasetInstruction("dbpedia", "DBPedia", "T->T", "Given a query, retrieve relevant entity descriptions from DBPedia."),
    DatasetInstruction("fever", "FEVER", "T->T", "Given a claim, retrieve documents that support or refute the claim."),
    DatasetInstruction("fiqa", "FiQA2018", "T->T",
                       "Given a financial question, retrieve user replies that best answer the question."),
    DatasetInstruction("hotpotqa", "HotpotQA", "T->T",
                       "Given a multi-hop question, retrieve documents that can help answer the question."),
    DatasetInstruction("msmarco", "MSMARCO", "T->T",
                       "Given a web search query, retrieve relevant passages that answer the query."),
    DatasetInstruction("nfcorpus", "NFCorpus", "T->T",
                       "Given a question, retrieve relevant documents that best answer the question."),
    DatasetInstruction("nq", "NQ", "T->T", "Given a question, retrieve Wikipedia passages that answer the question."),
    DatasetInstruction("quora", "Quora", "T->T",
                       "Given a question, retrieve questions that are semantically equivalent to the given question."),
    DatasetInstruction("scidocs", "SCIDOCS", "T->T",
                       "Given a scientific paper title, retrieve paper abstracts that are cited by the given paper."),
    DatasetInstruction("scifact", "SciFact", "T->T",
                       "Given a scientific claim, retrieve documents that support or refute the claim."),
    DatasetInstruction("touche2020", "Touche2020", "T->T",
                       "Given a question, retrieve detailed and persuasive arguments that answer the question."),
    DatasetInstruction("trec_covid", "TREC-COVID", "T->T",
                       "Given a query on COVID-19, retrieve documents that answer the query."),
    DatasetInstruction("webqa_t2t", "WebQA", "T->T",
                       "Retrieve passages from Wikipedia that provide answers to the following question."),
    # single-modal I->I
    DatasetInstruction("nights", "NIGHTS", "I->I", "Find a day-to-day image that looks similar to the provided image."),
    # cross-modal T->I
    DatasetInstruction("visualnews_t2i", "VisualNews", "T->I",
                       "Identify the news-related image in line with the described event."),
    DatasetInstruction("mscoco_t2i", "MSCOCO", "T->I", "Find me an everyday image that matches the given caption."),
    DatasetInstruction("flickr30k_t2i", "Flickr30k", "T->I", "Find an image that matches the given caption."),
    DatasetInstruction("fashion200k_t2i", "Fashion200K", "T->I",
                       "Based on the following fashion description, retrieve the best matching image."),
    # cross-modal T->VD (ViDoRe v1)
    DatasetInstruction("vidore_tatdqa", "TAT-DQA", "T->VD", _VIDORE),
    DatasetInstruction("vidore_arxivqa", "ArxivQA", "T->VD", _VIDORE),
    DatasetInstruction("vidore_docvqa", "DocVQA", "T->VD", _VIDORE),
    DatasetInstruction("vidore_infovqa", "InfoVQA", "T->VD", _VIDORE),
    DatasetInstruction("vidore_shift_project", "Shift Project", "T->VD", _VIDORE),
    DatasetInstruction("vidore_ai", "AI", "T->VD", _VIDORE),
    DatasetInstruction("vidore_government_reports", "Government Reports", "T->VD", _VIDORE),
    DatasetInstruction("vidore_healthcare", "Healthcare", "T->VD", _VIDORE),
    DatasetInstruction("vidore_energy", "Energy", "T->VD", _VIDORE),
    DatasetInstruction("vidore_tabfquad", "TabFQuAD", "T->VD", _VIDORE),
    # cross-modal I->T
    DatasetInstruction("visualnews_i2t", "VisualNews", "I->T", "Find a caption for the news in the given photo."),
    DatasetInstruction("mscoco_i2t", "MSCOCO", "I->T", "Find an image caption describing the given everyday image."),
    DatasetInstruction("flickr30k_i2t", "Flickr30k", "I->T", "Find a caption that describes the given image."),
    DatasetInstruction("fashion200k_i2t", "Fashion200K", "I->T",
                       "Based on the following fashion image, find the best matching description."),
    # fused-modal T->IT
    DatasetInstruction("webqa_t2it", "WebQA", "T->IT", "Find a Wikipedia image that answers this question."),
    DatasetInstruction("edis", "EDIS", "T->IT", "Find a news image that matches the provided caption."),
    # fused-modal IT->T
    DatasetInstruction("oven_it2t", "OVEN", "IT->T",
                       "Retrieve a Wikipedia paragraph that provides an answer to the given query about the image."),
    DatasetInstruction("infoseek_it2t", "InfoSeek", "IT->T",
                       "You have to find a Wikipedia segment that answers the question about the displayed image."),
    DatasetInstruction("remuq", "ReMuQ", "IT->T",
                       "Retrieve a fact-based paragraph that provides an answer to the given query about the image."),
    DatasetInstruction("llava", "LLaVA", "IT->T",
                       "Retrieve a document that answers the question about the given image."),
    DatasetInstruction("okvqa", "OK-VQA", "IT->T",
                       "Retrieve documents that provide an answer to the question alongside the image."),
    # fused-modal IT->I
    DatasetInstruction("cirr", "CIRR", "IT->I",
                       "Retrieve a day-to-day image that aligns with the modification instructions of the provided image."),
    DatasetInstruction("fashioniq", "FashionIQ", "IT->I",
                       "Find a fashion image that aligns with the reference image and style note."),
    # fused-modal IT->IT
    DatasetInstruction("oven_it2it", "OVEN", "IT->IT",
                       "Retrieve a Wikipedia image-description pair that provides evidence for the question of "
                       "this image."),
    DatasetInstruction("evqa", "E-VQA", "IT->IT",
                       "Obtain illustrated documents that correspond to the inquiry alongside the provided image."),
    DatasetInstruction("infoseek_it2it", "InfoSeek", "IT->IT",
                       "Find an image and subject description from Wikipedia that answers my question about this image."),
)

#: slug -> full record (dataset name, UMRB task, instruction).
DATASETS: dict[str, DatasetInstruction] = {d.slug: d for d in _TABLE}
#: slug -> query instruction.
INSTRUCTIONS: dict[str, str] = {d.slug: d.instruction for d in _TABLE}

#: Default query instruction per modality combination (query -> candidate); "T->VD" = visual documents.
DEFAULT_INSTRUCTIONS: dict[str, str] = {
    "T->T": "Given a query, retrieve relevant passages that answer the query.",
    "I->I": "Find an image that looks similar to the given image.",
    "T->I": "Find an image that matches the given text.",
    "T->VD": _VIDORE,
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
