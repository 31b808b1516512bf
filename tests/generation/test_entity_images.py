"""Entity images from a real loopback OpenAI-compatible images endpoint: store, cache, ledger, failures."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from gme_data.errors import InvalidInputError
from gme_data.generation.entity_images import EntityImageGenerator, ImageGenConfig
from gme_data.images import ImageStore
from tests.support.images_server import ImagesServer, prompt_png


def make(server: ImagesServer, tmp_path: Path, monkeypatch, **overrides) -> EntityImageGenerator:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-images-key-123456")
    fields = {"enabled": True, "base_url": server.base_url, "model": "flux-test", "size": "64x64", "seed": 7,
              "price_per_image": 0.04, "backoff_base_s": 0.01, **overrides}
    cfg = ImageGenConfig(**fields)
    return EntityImageGenerator(cfg, ImageStore(tmp_path / "images"), tmp_path / "cache", sleep=lambda s: None)


def test_generates_stores_and_caches(tmp_path: Path, monkeypatch) -> None:
    with ImagesServer() as server:
        gen = make(server, tmp_path, monkeypatch)
        first = gen.generate("Eiffel Tower", "A wrought-iron lattice tower in Paris.\nIt is 330 m tall.")
        assert first.failure is None and not first.cached
        assert first.prompt == "A photograph of Eiffel Tower. A wrought-iron lattice tower in Paris. It is 330 m tall."
        # the request: b64_json, size, model and the seed as an extra field; the key as a bearer token
        body = server.requests[0]["body"]
        assert body["response_format"] == "b64_json" and body["size"] == "64x64" and body["seed"] == 7
        assert body["model"] == "flux-test" and server.requests[0]["authorization"] == "Bearer sk-test-images-key-123456"
        # stored content-addressed as a normalised PNG, pixels as served
        path = Path(first.path)
        assert path.parent.parent == tmp_path / "images" and path.suffix == ".png"
        served = Image.open(__import__("io").BytesIO(prompt_png(first.prompt, "64x64"))).convert("RGB")
        assert list(Image.open(path).convert("RGB").getdata()) == list(served.getdata())
        assert first.id == f"gen-{path.stem[:16]}"
        assert first.lineage() == {"image_origin": "generated", "prompt": first.prompt, "model": "flux-test",
                                   "size": "64x64", "seed": 7, "cached": False}
        # the same request again, from a fresh generator (a re-materialization): no new HTTP request
        again = make(server, tmp_path, monkeypatch).generate("Eiffel Tower", "A wrought-iron lattice tower in "
                                                             "Paris.\nIt is 330 m tall.")
        assert again.cached and again.path == first.path and len(server.requests) == 1
        # another seed is another request
        other = make(server, tmp_path, monkeypatch, seed=8).generate("Eiffel Tower", "x")
        assert not other.cached and len(server.requests) == 2
    assert gen.ledger.as_dict(0.04) == {"requests": 1, "http_retries": 0, "generated": 1, "cache_hits": 0,
                                        "failures": {}, "price_per_image": 0.04, "cost": 0.04}


def test_429_is_retried_then_succeeds(tmp_path: Path, monkeypatch) -> None:
    with ImagesServer() as server:
        server.script(["429", "500", "ok"])
        gen = make(server, tmp_path, monkeypatch)
        out = gen.generate("Koala", "A marsupial.")
        assert out.failure is None and Path(out.path).is_file()
        assert len(server.requests) == 3
        assert gen.ledger.http_retries == 2 and gen.ledger.requests == 3 and gen.ledger.generated == 1


def test_429_past_the_retry_budget_is_a_counted_failure(tmp_path: Path, monkeypatch) -> None:
    with ImagesServer() as server:
        server.script(["429"] * 3)
        gen = make(server, tmp_path, monkeypatch, max_http_retries=2)
        out = gen.generate("Koala", None)
        assert out.failure == "rate_limited" and out.path is None and "3 attempt(s)" in out.detail
        assert gen.ledger.failures == {"rate_limited": 1} and gen.ledger.generated == 0
        # nothing cached: the next materialization asks again
        assert not gen.generate("Koala", None).cached and len(server.requests) == 4


@pytest.mark.parametrize(("behaviour", "reason"), [("malformed", "malformed_payload"), ("no_data", "malformed_payload"),
                                                    ("bad_image", "unreadable_image"), ("bomb", "unreadable_image")])
def test_bad_answers_are_refused_and_stored_nowhere(tmp_path: Path, monkeypatch, behaviour, reason) -> None:
    with ImagesServer() as server:
        server.script([behaviour])
        gen = make(server, tmp_path, monkeypatch)
        out = gen.generate("Mona Lisa", "A portrait.")
        assert out.failure == reason and out.path is None
        assert "sk-test-images-key-123456" not in out.detail
        assert not (tmp_path / "images").exists() or not any((tmp_path / "images").rglob("*.png"))
        assert gen.ledger.failures == {reason: 1}
        # the next answer is fine: it is generated and cached then
        ok = gen.generate("Mona Lisa", "A portrait.")
        assert ok.failure is None and Path(ok.path).is_file()


def test_byte_cap_applies_to_images(tmp_path: Path, monkeypatch) -> None:
    with ImagesServer() as server:
        gen = make(server, tmp_path, monkeypatch, max_response_bytes=200)
        out = gen.generate("Umbrella", "A folding canopy.")
        assert out.failure == "response_too_large" and out.path is None


def test_wrong_key_raises_a_redacted_configuration_error(tmp_path: Path, monkeypatch) -> None:
    from gme_data.generation.errors import GenerationError

    with ImagesServer() as server:
        server.script(["401_echo"])
        gen = make(server, tmp_path, monkeypatch)
        with pytest.raises(GenerationError, match="refused the request \\(401\\)") as err:
            gen.generate("Aspirin", None)
        assert "sk-test-images-key-123456" not in str(err.value) and len(server.requests) == 1


def test_config_errors_are_named(monkeypatch) -> None:
    with pytest.raises(InvalidInputError, match="size must look like"):
        ImageGenConfig(size="large")
    with pytest.raises(InvalidInputError, match="prompt_template"):
        ImageGenConfig(prompt_template="{entity} {colour}")
    monkeypatch.delenv("GME_DATA_LLM_API_KEY_ENVS", raising=False)
    with pytest.raises(InvalidInputError, match="not an allowed API-key variable"):
        EntityImageGenerator(ImageGenConfig(api_key_env="AWS_SECRET_ACCESS_KEY"), ImageStore("/tmp/x"), "/tmp/x")
