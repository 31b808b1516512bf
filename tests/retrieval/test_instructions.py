"""The UMRB instruction registry covers the 47 datasets of the benchmark table."""

from __future__ import annotations

from collections import Counter

import pytest

from gme_data.errors import InvalidInputError
from gme_data.retrieval.instructions import (
    CANDIDATE_INSTRUCTION,
    DATASETS,
    DEFAULT_INSTRUCTIONS,
    INSTRUCTIONS,
    default_instruction,
    get_instruction,
)


def test_47_datasets_with_umrb_task_counts():
    assert len(INSTRUCTIONS) == 47 == len(DATASETS)
    counts = Counter(d.task for d in DATASETS.values())
    assert counts == {"T->T": 16, "I->I": 1, "T->I": 4, "T->VD": 10, "I->T": 4, "T->IT": 2, "IT->T": 5,
                      "IT->I": 2, "IT->IT": 3}
    assert all(v.strip().endswith((".", "?")) for v in INSTRUCTIONS.values())
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
