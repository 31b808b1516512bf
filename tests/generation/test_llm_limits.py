"""Issue 14, finding 6: a wall-clock deadline per LLM request and a cap on response bytes.

Every test talks to the real loopback server; the faults are a body (or header) trickled one byte
at a time, which no per-read timeout catches, and an answer far larger than ``max_tokens`` allows.
"""

from __future__ import annotations

import http.client
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from gme_data.generation import GenerationConfig, ResponseCache, generate_queries, load_prompt
from gme_data.generation.client import DEADLINE_EXCEEDED, RESPONSE_TOO_LARGE, ChatClient, Ledger
from tests.generation.conftest import candidates_frame
from tests.support.openai_server import OpenAICompatServer

CAPTION_VALUES = {"title": "Koala", "domain": "animals", "text": "The koala is a marsupial.",
                  "language": "English", "image_hint": ""}


def _config(server: OpenAICompatServer, tmp_path: Path, **overrides) -> GenerationConfig:
    values = dict(backend="openai", base_url=server.base_url, model="test-model", api_key="sk-test",
                  cache_path=str(tmp_path / "llm_cache.duckdb"), concurrency=1, backoff_base_s=0.01,
                  backoff_max_s=0.05, timeout_s=1.0, request_deadline_s=1.0, max_invalid_retries=0)
    values.update(overrides)
    return GenerationConfig(**values)


def _ask(config: GenerationConfig, cache: ResponseCache):
    client = ChatClient(config, cache, Ledger())
    started = time.monotonic()
    result = client.structured(load_prompt("caption_query"), CAPTION_VALUES)
    return result, time.monotonic() - started, client


def test_trickled_body_is_cut_at_the_request_deadline(tmp_path):
    # one byte every 50 ms: each read is far inside timeout_s=1, the whole answer would take minutes
    with OpenAICompatServer(trickle_interval_s=0.05, trickle_max_s=8.0) as server:
        server.script(["trickle"])
        endpoint = server.base_url
        with ResponseCache(tmp_path / "cache.duckdb") as cache:
            result, elapsed, client = _ask(_config(server, tmp_path), cache)
            assert len(cache) == 0  # never cached
    assert elapsed < 2.5, f"request ran {elapsed:.1f} s past its 1 s deadline"
    assert result.data is None and result.reason == DEADLINE_EXCEEDED
    assert endpoint in result.detail and "request_deadline_s=1.0" in result.detail
    assert client.ledger.errors == {DEADLINE_EXCEEDED: 1}


def test_trickled_headers_are_cut_at_the_request_deadline(tmp_path):
    with OpenAICompatServer(trickle_interval_s=0.05, trickle_max_s=8.0) as server:
        server.script(["trickle_headers"])
        endpoint = server.base_url
        with ResponseCache(tmp_path / "cache.duckdb") as cache:
            result, elapsed, _ = _ask(_config(server, tmp_path), cache)
            assert len(cache) == 0
    assert elapsed < 2.5, f"request ran {elapsed:.1f} s past its 1 s deadline"
    assert result.reason == DEADLINE_EXCEEDED and endpoint in result.detail


def test_deadline_bounds_all_retries_of_one_request(tmp_path):
    # each attempt times out after 0.4 s; six attempts would take 2.4 s, the deadline allows 1 s
    with OpenAICompatServer(slow_seconds=5.0) as server:
        server.script(["slow"] * 6)
        config = _config(server, tmp_path, timeout_s=0.4, request_deadline_s=1.0, max_http_retries=5)
        with ResponseCache(tmp_path / "cache.duckdb") as cache:
            result, elapsed, client = _ask(config, cache)
    assert elapsed < 1.6
    assert result.reason == DEADLINE_EXCEEDED
    assert client.ledger.errors.get("timeout", 0) >= 1 and server.request_count < 6


def test_answer_far_beyond_max_tokens_is_rejected_and_not_cached(tmp_path):
    with OpenAICompatServer(huge_bytes=30 * 1024 * 1024) as server:  # 30 MB answer, max_tokens=256
        server.script(["huge"])
        config = _config(server, tmp_path, max_tokens=256, request_deadline_s=20.0, timeout_s=10.0)
        assert config.response_byte_cap() < 1024 * 1024
        with ResponseCache(tmp_path / "cache.duckdb") as cache:
            result, elapsed, client = _ask(config, cache)
            assert len(cache) == 0
        assert result.data is None and result.reason == RESPONSE_TOO_LARGE
        assert server.base_url in result.detail and str(config.response_byte_cap()) in result.detail
        assert client.ledger.errors == {RESPONSE_TOO_LARGE: 1}
        # the next (normal) request on the same client is answered and cached as before
        server.script(["ok"])
        with ResponseCache(tmp_path / "cache.duckdb") as cache:
            client.cache = cache
            again = client.structured(load_prompt("caption_query"), {**CAPTION_VALUES, "title": "Wombat"})
            assert again.data is not None and len(cache) == 1


def test_oversize_answer_is_a_lineage_drop_naming_the_endpoint(tmp_path):
    with OpenAICompatServer(huge_bytes=2 * 1024 * 1024) as server:
        server.when("Title: Eiffel Tower", ["huge"])
        endpoint = server.base_url
        config = _config(server, tmp_path, request_deadline_s=20.0, timeout_s=10.0, styles="t2t",
                         min_answer_support=0.0)  # the fake answers are not about the paragraph
        table, lineage, report = generate_queries(candidates_frame(tmp_path, n=2, with_images=False), config,
                                                  show_progress=False)
    assert list(table["candidate_id"]) == ["cand-01"]
    assert report.drops_by_reason == {RESPONSE_TOO_LARGE: 1}
    dropped = [r for r in lineage.records if r.status == "dropped"]
    assert endpoint in dropped[0].payload["detail"]


def test_gzip_bomb_is_capped_after_inflating_and_plain_gzip_still_works(tmp_path):
    with OpenAICompatServer(huge_bytes=20 * 1024 * 1024) as server:  # 20 MB inflated, ~20 KB on the wire
        server.script(["gzip_bomb", "gzip"])
        with ResponseCache(tmp_path / "cache.duckdb") as cache:
            bomb, elapsed, _ = _ask(_config(server, tmp_path, request_deadline_s=20.0, timeout_s=10.0), cache)
            assert bomb.reason == RESPONSE_TOO_LARGE and "inflated" in bomb.detail and len(cache) == 0
            fine, _, _ = _ask(_config(server, tmp_path, seed=3), cache)
            assert set(fine.data) == {"query"} and fine.data["query"].startswith("query 0: ")
            assert len(cache) == 1
    assert elapsed < 5


def test_explicit_byte_cap_keeps_answers_within_it(tmp_path):
    with OpenAICompatServer() as server:
        with ResponseCache(tmp_path / "cache.duckdb") as cache:
            ok, _, _ = _ask(_config(server, tmp_path, max_response_bytes=4096), cache)
            assert ok.data is not None and len(cache) == 1
            tight, _, _ = _ask(_config(server, tmp_path, max_response_bytes=100, seed=7), cache)
            assert tight.reason == RESPONSE_TOO_LARGE and len(cache) == 1


class _ForwardProxy(BaseHTTPRequestHandler):
    """A plain-HTTP forward proxy on loopback that records the URLs it relays."""

    seen: list[str] = []

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - silence stderr logging
        return

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        target = urlsplit(self.path)
        type(self).seen.append(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("proxy-connection", "connection")}
        upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
        upstream.request("POST", target.path, body=body, headers=headers)
        answer = upstream.getresponse()
        data = answer.read()
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.getheader("Content-Type") or "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        upstream.close()


def test_environment_proxy_is_still_used_and_no_proxy_respected(tmp_path, monkeypatch):
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), _ForwardProxy)
    threading.Thread(target=proxy.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    _ForwardProxy.seen = []
    try:
        with OpenAICompatServer() as server, ResponseCache(tmp_path / "cache.duckdb") as cache:
            for name in ("no_proxy", "NO_PROXY"):
                monkeypatch.delenv(name, raising=False)
            monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{proxy.server_address[1]}")
            via_proxy, _, _ = _ask(_config(server, tmp_path), cache)
            assert via_proxy.data is not None
            assert _ForwardProxy.seen == [server.base_url + "/chat/completions"]
            monkeypatch.setenv("no_proxy", "127.0.0.1")
            direct, _, _ = _ask(_config(server, tmp_path, seed=5), cache)
            assert direct.data is not None and len(_ForwardProxy.seen) == 1 and server.request_count == 2
    finally:
        proxy.shutdown()
        proxy.server_close()
