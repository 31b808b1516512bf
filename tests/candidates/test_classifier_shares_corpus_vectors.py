"""The consistency filter's corpus reads each candidate as the domain classifier did: no second embedding."""

from __future__ import annotations

from gme_data.candidates import classification_text
from gme_data.retrieval.text_encoders import MEMO_COUNTS, shared_text_encoder
from gme_data.tables import passage_text


def test_passage_text_is_title_dot_text():
    assert passage_text("Cat", "The domestic cat is small.") == "Cat. The domestic cat is small."
    assert passage_text(None, "Only text.") == "Only text." and passage_text("Only title", "") == "Only title"
    assert passage_text(None, None) is None and passage_text("", float("nan")) is None
    assert classification_text("Cat", "Purrs.") == passage_text("Cat", "Purrs.")


def test_consistency_corpus_texts_are_not_embedded_again(sample_candidates):
    table, _, _ = sample_candidates  # built with the default classifier: the shared MiniLM encoder
    encoder = shared_text_encoder()
    texts = [passage_text(t, x) for t, x in zip(table["title"], table["text"], strict=True)]
    embedded, memo_hits = encoder.encoded, MEMO_COUNTS["hits"]
    vectors = encoder.encode(texts)  # what the consistency filter embeds for the candidates
    assert vectors.shape == (len(table), 384)
    assert encoder.encoded == embedded  # every paragraph vector came from the classifier's pass
    assert MEMO_COUNTS["hits"] - memo_hits == len(set(texts))
