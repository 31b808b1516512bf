"""Issue 14, finding 7: API keys and URL credentials never reach messages, reprs, metadata or lineage,
and only operator-approved environment variables may hold the key a run sends.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dagster_project.resources import LLMResource
from gme_data.errors import InvalidInputError
from gme_data.generation import GenerationConfig, GenerationError, generate_queries
from gme_data.redaction import redact, redact_url
from tests.generation.conftest import candidates_frame, paragraph_responder
from tests.support.openai_server import OpenAICompatServer

KEY = "sk-proj-Zq81LmT0pSecretKey4711xyz"


def _chain(exc: BaseException | None) -> list[str]:
    """str() of an exception and of everything in its cause / context chain."""
    out: list[str] = []
    while exc is not None and len(out) < 20:
        out += [str(exc), repr(exc)]
        exc = exc.__cause__ or exc.__context__
    return out


def _config(server: OpenAICompatServer, tmp_path: Path, **overrides) -> GenerationConfig:
    values = dict(backend="openai", base_url=server.base_url, model="test-model", api_key=KEY,
                  cache_path=str(tmp_path / "llm_cache.duckdb"), concurrency=1, backoff_base_s=0.01,
                  backoff_max_s=0.05, timeout_s=5.0, styles="t2t")
    values.update(overrides)
    return GenerationConfig(**values)


def test_401_echoing_the_bearer_key_is_redacted_in_the_error(tmp_path):
    with OpenAICompatServer() as server:
        server.script(["401_echo"])
        endpoint = server.base_url
        with pytest.raises(GenerationError) as info:
            generate_queries(candidates_frame(tmp_path, n=1, with_images=False), _config(server, tmp_path),
                             show_progress=False)
        assert server.authorizations == [f"Bearer {KEY}"]  # the server did echo this
    texts = _chain(info.value)
    assert "401" in texts[0] and endpoint in texts[0]
    assert not any(KEY in t or "Bearer sk-" in t or "Zq81LmT0" in t for t in texts), texts


def test_400_echoing_the_key_is_redacted_in_lineage(tmp_path):
    with OpenAICompatServer() as server:
        server.script(["400_echo"])
        _, lineage, report = generate_queries(candidates_frame(tmp_path, n=1, with_images=False),
                                              _config(server, tmp_path), show_progress=False)
    assert report.drops_by_reason == {"request_error": 1}
    rows = [str(r.payload) for r in lineage.records] + [str(r) for r in lineage.records]
    assert rows and "Incorrect API key provided" in rows[0]
    assert not any(KEY in row or "Zq81LmT0" in row for row in rows), rows


def test_config_repr_and_metadata_hide_key_and_url_credentials():
    config = GenerationConfig(backend="openai", base_url="https://alice:pa55word@llm.example.com:8443/v1",
                              api_key=KEY)
    for text in (repr(config), str(config), str(config.public_dict())):
        assert KEY not in text and "pa55word" not in text and "alice" not in text
    assert config.public_dict()["base_url"] == "https://***@llm.example.com:8443/v1"
    assert config.public_dict()["api_key"] == "***"
    assert config.base_url.startswith("https://alice:pa55word@")  # the client still gets the real value


@pytest.mark.parametrize(("text", "secret"), [
    ("Authorization: Bearer abc.def-ghi_jkl", "abc.def-ghi_jkl"),
    ("bad key sk-ant-api03-AAAAbbbbCCCC1234", "AAAAbbbbCCCC1234"),
    ("GET http://bob:hunter2@10.0.0.5:8000/v1/models", "hunter2"),
    ("see https://x.example/v1?api_key=tok3n123&model=m", "tok3n123"),
    ('{"api_key": "plainvalue99"}', "plainvalue99"),
])
def test_redaction_patterns(text, secret):
    assert secret not in redact(text)
    assert "***" in redact(text)


def test_redaction_removes_known_secrets_and_keeps_ordinary_text():
    assert redact("the key is Xy7-custom-secret", secrets=["Xy7-custom-secret"]) == "the key is ***"
    plain = "LLM endpoint http://127.0.0.1:8000/v1 (model 'qwen') refused: invalid model"
    assert redact(plain) == plain
    assert redact_url("http://u:p@Host:80/v1/") == "http://***@host/v1"


def test_run_config_cannot_send_an_arbitrary_environment_secret(tmp_path, monkeypatch):
    monkeypatch.setenv("DB_ROOT_PASSWORD", "hunter2-do-not-leak")
    monkeypatch.delenv("GME_DATA_LLM_API_KEY_ENVS", raising=False)
    with OpenAICompatServer() as server:  # stands for a server the run's launcher controls
        llm = LLMResource(backend="openai", base_url=server.base_url, model="test-model",
                          api_key_env="DB_ROOT_PASSWORD")
        with pytest.raises(InvalidInputError, match="DB_ROOT_PASSWORD.*GME_DATA_LLM_API_KEY_ENVS") as info:
            gen = llm.generation_config(cache_path=str(tmp_path / "c.duckdb"))
            generate_queries(candidates_frame(tmp_path, n=1, with_images=False), gen, show_progress=False)
        assert "hunter2" not in str(info.value)
        assert not any("hunter2" in a for a in server.authorizations)


def test_operator_allow_list_admits_named_key_variables(tmp_path, monkeypatch):
    monkeypatch.setenv("TEAM_LLM_API_KEY", "sk-team-0123456789")
    monkeypatch.setenv("GME_DATA_LLM_API_KEY_ENVS", "OPENAI_API_KEY, *_LLM_API_KEY")
    with OpenAICompatServer(api_key="sk-team-0123456789", responder=paragraph_responder) as server:
        llm = LLMResource(backend="openai", base_url=server.base_url, model="test-model",
                          api_key_env="TEAM_LLM_API_KEY", styles="t2t")
        gen = llm.generation_config(cache_path=str(tmp_path / "c.duckdb"))
        table, _, _ = generate_queries(candidates_frame(tmp_path, n=1, with_images=False), gen,
                                       show_progress=False)
        assert len(table) == 1 and server.authorizations == ["Bearer sk-team-0123456789"]
    assert "sk-team" not in repr(gen)
