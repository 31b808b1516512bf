"""The UMRB instructions are GME's own strings, each pinned here verbatim with its recorded source."""

from __future__ import annotations

from collections import Counter

import pytest

from gme_data.errors import InvalidInputError
from gme_data.retrieval.instructions import (
    CANDIDATE_INSTRUCTION,
    DATASETS,
    DEFAULT_INSTRUCTIONS,
    INSTRUCTION_SET,
    INSTRUCTIONS,
    SOURCE,
    SOURCES,
    default_instruction,
    get_instruction,
)

_VIDORE = "Find a screenshot that relevant to the user's question."
#: (slug, MTEB task key, instruction) exactly as GME's MTEB code ran them (mteb@075873f9).
GME_STRINGS = [
    ("arguana", "ArguAna", "Given a claim, find documents that refute the claim."),
    ("climate_fever", "ClimateFEVER",
     "Given a claim about climate change, retrieve documents that support or refute the claim."),
    ("cqadupstack", "CQADupstack*Retrieval", "Retrieve text based on user query."),
    ("dbpedia", "DBPedia", "Given a query, retrieve relevant entity descriptions from DBPedia."),
    ("fever", "FEVER", "Given a claim, retrieve documents that support or refute the claim."),
    ("fiqa", "FiQA2018", "Given a financial question, retrieve user replies that best answer the question."),
    ("hotpotqa", "HotpotQA", "Given a multi-hop question, retrieve documents that can help answer the question."),
    ("msmarco", "MSMARCO", "Given a web search query, retrieve relevant passages that answer the query."),
    ("nfcorpus", "NFCorpus", "Given a question, retrieve relevant documents that best answer the question."),
    ("nq", "NQ", "Given a question, retrieve Wikipedia passages that answer the question."),
    ("quora", "QuoraRetrieval",
     "Given a question, retrieve questions that are semantically equivalent to the given question."),
    ("scidocs", "SCIDOCS",
     "Given a scientific paper title, retrieve paper abstracts that are cited by the given paper."),
    ("scifact", "SciFact", "Given a scientific claim, retrieve documents that support or refute the claim."),
    ("touche2020", "Touche2020",
     "Given a question, retrieve detailed and persuasive arguments that answer the question."),
    ("trec_covid", "TRECCOVID", "Given a query on COVID-19, retrieve documents that answer the query."),
    ("webqa_t2t", "WebQAT2TRetrieval",
     "Retrieve passages from Wikipedia that provide answers to the following question."),
    ("nights", "NIGHTSI2IRetrieval", "Find a day-to-day image that looks similar to the provided image."),
    ("visualnews_t2i", "VisualNewsT2IRetrieval", "Identify the news-related image in line with the described event."),
    ("mscoco_t2i", "MSCOCOT2IRetrieval", "Identify the image showcasing the described everyday scene."),
    ("flickr30k_t2i", "Flickr30kT2IRetrieval", "Find an image that matches the given caption."),
    ("fashion200k_t2i", "Fashion200kT2IRetrieval",
     "Based on the following fashion description, retrieve the best matching image."),
    ("vidore_tatdqa", "VidoreTatdqaRetrieval", _VIDORE),
    ("vidore_arxivqa", "VidoreArxivQARetrieval", _VIDORE),
    ("vidore_docvqa", "VidoreDocVQARetrieval", _VIDORE),
    ("vidore_infovqa", "VidoreInfoVQARetrieval", _VIDORE),
    ("vidore_shift_project", "VidoreShiftProjectRetrieval", _VIDORE),
    ("vidore_ai", "VidoreSyntheticDocQAAIRetrieval", _VIDORE),
    ("vidore_government_reports", "VidoreSyntheticDocQAGovernmentReportsRetrieval", _VIDORE),
    ("vidore_healthcare", "VidoreSyntheticDocQAHealthcareIndustryRetrieval", _VIDORE),
    ("vidore_energy", "VidoreSyntheticDocQAEnergyRetrieval", _VIDORE),
    ("vidore_tabfquad", "VidoreTabfquadRetrieval", _VIDORE),
    ("visualnews_i2t", "VisualNewsI2TRetrieval", "Find a caption for the news in the given photo."),
    ("mscoco_i2t", "MSCOCOI2TRetrieval", "Find an image caption describing the following everyday image."),
    ("flickr30k_i2t", "Flickr30kI2TRetrieval", "Find an image caption describing the following image."),
    ("fashion200k_i2t", "Fashion200kI2TRetrieval",
     "Based on the following fashion description, retrieve the best matching image."),
    ("webqa_t2it", "WebQAT2ITRetrieval", "Find a Wikipedia image that answers this question."),
    ("edis", "EDIST2ITRetrieval", "Identify the news photo for the given caption."),
    ("oven_it2t", "OVENIT2TRetrieval",
     "Retrieve a Wikipedia paragraph that provides an answer to the given query about the image."),
    ("infoseek_it2t", "InfoSeekIT2TRetrieval",
     "Find a paragraph from Wikipedia that answers my question about this image."),
    ("remuq", "ReMuQIT2TRetrieval",
     "Retrieve a fact-based paragraph that provides an answer to the given query about the image."),
    ("llava", "LLaVAIT2TRetrieval", "Provide a specific decription of the image along with the following question."),
    ("okvqa", "OKVQAIT2TRetrieval", "Retrieve documents that provide an answer to the question alongside the image."),
    ("cirr", "CIRRIT2IRetrieval",
     "Retrieve a day-to-day image that aligns with the modification instructions of the provided image."),
    ("fashioniq", "FashionIQIT2IRetrieval", "Find a fashion image that aligns with the reference image and style note."),
    ("oven_it2it", "OVENIT2ITRetrieval",
     "Retrieve a Wikipedia image-description pair that provides evidence for the question of this image."),
    ("evqa", "EncyclopediaVQAIT2ITRetrieval",
     "Obtain illustrated documents that correspond to the inquiry alongside the provided image."),
    ("infoseek_it2it", "InfoSeekIT2ITRetrieval",
     "Find an image and subject description from Wikipedia that answers my question about this image."),
]


def test_all_47_instructions_are_gmes_strings_verbatim():
    assert len(GME_STRINGS) == 47 == len(INSTRUCTIONS) == len(DATASETS)
    assert [s for s, _, _ in GME_STRINGS] == list(INSTRUCTIONS)  # same order as the UMRB table
    for slug, key, text in GME_STRINGS:
        assert INSTRUCTIONS[slug] == text, slug
        assert DATASETS[slug].mteb_task == key, slug
    # typos are GME's and are kept
    assert "that relevant" in INSTRUCTIONS["vidore_docvqa"] and "decription" in INSTRUCTIONS["llava"]
    assert INSTRUCTIONS["fashion200k_i2t"] == INSTRUCTIONS["fashion200k_t2i"]


def test_every_instruction_names_its_primary_source():
    assert SOURCE.repository == "embeddings-benchmark/mteb"
    assert SOURCE.path == "mteb/models/instructions.py"
    assert SOURCE.commit == "075873f9c954d29aac927782bd30219c5dbd84ce"
    assert INSTRUCTION_SET == "gme-mteb@075873f9"
    for slug, key, _ in GME_STRINGS:
        src = SOURCES[slug]
        assert src.repository == SOURCE.repository and src.commit == SOURCE.commit and len(src.commit) == 40
        if slug == "cqadupstack":  # not in GME's table: the wrapper's fallback for Retrieval tasks
            assert src.lookup == 'DEFAULT_PROMPTS["Retrieval"]'
        else:
            assert src.lookup == f'TASKNAME2INSTRUCTIONS["{key}"]'


def test_47_datasets_with_umrb_task_counts():
    counts = Counter(d.task for d in DATASETS.values())
    assert counts == {"T->T": 16, "I->I": 1, "T->I": 4, "T->VD": 10, "I->T": 4, "T->IT": 2, "IT->T": 5,
                      "IT->I": 2, "IT->IT": 3}
    assert all(v.endswith(".") for v in INSTRUCTIONS.values())  # get_gme_instruction appends the "."
    assert CANDIDATE_INSTRUCTION == "You are a helpful assistant."
    assert CANDIDATE_INSTRUCTION not in INSTRUCTIONS.values()


def test_lookup_and_named_errors():
    assert get_instruction("msmarco").startswith("Given a web search query")
    assert get_instruction("cirr") == DATASETS["cirr"].instruction
    assert DATASETS["vidore_docvqa"].task == "T->VD"
    with pytest.raises(InvalidInputError, match="mscoco_t2i"):
        get_instruction("mscoco_t2")
    assert default_instruction("T->I") == "Find an image that matches the given text."
    assert set(DEFAULT_INSTRUCTIONS) >= {"T->T", "I->I", "T->I", "I->T", "T->IT", "IT->T", "IT->I", "IT->IT"}
    with pytest.raises(InvalidInputError, match="X->Y"):
        default_instruction("X->Y")
