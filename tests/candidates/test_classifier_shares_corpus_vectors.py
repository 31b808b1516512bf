"""The domain classifier reads GME's corpus text, so later stages reuse its paragraph vectors."""

from __future__ import annotations

from gme_data.candidates import classification_text
from gme_data.retrieval.text_encoders import MEMO_COUNTS, shared_text_encoder
from gme_data.tables import corpus_text


def test_classification_text_is_the_corpus_text():
    assert classification_text("Cat", "The domestic cat is small.") == "Cat The domestic cat is small."
    assert classification_text("Cat", "Cat flaps are doors.") == "Cat flaps are doors."  # title once
    assert classification_text(None, "Only text.") == "Only text." and classification_text("Only title", "") == \
        "Only title"
    assert classification_text(None, None) is None and classification_text("", "") is None


def test_consistency_corpus_texts_are_not_embedded_again(sample_candidates):
    table, _, _ = sample_candidates  # built with the default classifier: the shared MiniLM encoder
    encoder = shared_text_encoder()
    texts = [corpus_text(t, x) for t, x in zip(table["title"], table["text"], strict=True)]
    embedded, memo_hits = encoder.encoded, MEMO_COUNTS["hits"]
    vectors = encoder.encode(texts)  # what the consistency filter, mining and evaluation embed
    assert vectors.shape == (len(table), 384)
    assert encoder.encoded == embedded  # every paragraph vector came from the classifier's pass
    assert MEMO_COUNTS["hits"] - memo_hits == len(set(texts))
