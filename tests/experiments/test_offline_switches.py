"""The offline default's ablation switches: last-token pooling and instruction prefixes change vectors,
the defaults change nothing (same vectors, same settings, same cache keys), and a trained adapter
records the switches so evaluation embeds as training did."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import gme_data
from gme_data.errors import InvalidInputError
from gme_data.retrieval.offline import OfflineEmbedder
from gme_data.training import AdapterTrainable

TEXTS = ["What is a lighthouse?", "A lighthouse is a tower with a bright lamp that guides ships."]
INSTRUCTION = "Given a query, retrieve relevant passages that answer the query."


@pytest.fixture(scope="module")
def default() -> OfflineEmbedder:
    return OfflineEmbedder(ocr=False)


def test_defaults_are_unchanged(default: OfflineEmbedder) -> None:
    assert "pooling" not in default.settings and "query_instructions" not in default.settings
    # without the switch, an instruction does not change a query's vector (MiniLM is not instruction-tuned)
    np.testing.assert_allclose(default.encode(TEXTS[:1], role="query", instruction=INSTRUCTION),
                               default.encode(TEXTS[:1], role="query"), atol=1e-6)


def test_query_instructions_prefix_queries_only(default: OfflineEmbedder) -> None:
    emb = OfflineEmbedder(ocr=False, query_instructions=True)
    assert emb.settings["query_instructions"] is True and emb.cache_key != default.cache_key
    with_ins = emb.encode(TEXTS[:1], role="query", instruction=INSTRUCTION)
    prefixed = default.encode([f"{INSTRUCTION} {TEXTS[0]}"], role="query")
    np.testing.assert_allclose(with_ins, prefixed, atol=1e-5)
    assert float(with_ins[0] @ default.encode(TEXTS[:1], role="query")[0]) < 0.99
    # candidates never get a task instruction
    np.testing.assert_allclose(emb.encode(TEXTS[1:], role="candidate"), default.encode(TEXTS[1:], role="candidate"),
                               atol=1e-6)


def test_last_token_pooling(default: OfflineEmbedder) -> None:
    emb = OfflineEmbedder(ocr=False, pooling="last")
    assert emb.settings["pooling"] == "last"
    last, mean = emb.encode(TEXTS, role="candidate"), default.encode(TEXTS, role="candidate")
    np.testing.assert_allclose(np.linalg.norm(last, axis=1), 1.0, atol=1e-5)
    assert np.all(np.sum(last * mean, axis=1) < 0.99)  # a different vector per text
    with pytest.raises(InvalidInputError, match="pooling must be one of"):
        OfflineEmbedder(ocr=False, pooling="max")
    with pytest.raises(InvalidInputError, match="needs text_backend='onnx'"):
        OfflineEmbedder(ocr=False, pooling="last", text_backend="torch")


def test_adapter_folder_records_the_switches(tmp_path: Path) -> None:
    base = OfflineEmbedder(ocr=False, pooling="last", query_instructions=True)
    trainable = AdapterTrainable(base, base_spec="offline-default", hidden=4)
    trainable.save(tmp_path / "model")
    loaded = gme_data.load_embedder(str(tmp_path / "model"))
    assert loaded.base.settings["pooling"] == "last" and loaded.base.settings["query_instructions"] is True
    np.testing.assert_allclose(loaded.encode(TEXTS[:1], role="query", instruction=INSTRUCTION),
                               base.encode(TEXTS[:1], role="query", instruction=INSTRUCTION), atol=1e-5)
