"""The ``local`` backend against the real llama.cpp server with the real bundled SmolLM2-135M GGUF."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from gme_data.generation import GenerationConfig, GenerationError, generate_queries, load_prompt
from gme_data.generation.client import JSON_SCHEMA_UNSUPPORTED, SCHEMA_MODE_BY_ENDPOINT, ChatClient, Ledger
from gme_data.generation.local_server import (
    BUNDLED_FILE,
    BUNDLED_SHA256,
    GGUF_ENV,
    LocalLLMServer,
    resolve_gguf,
)
from gme_data.lineage import LineageStore
from tests.generation.conftest import PARAGRAPHS, candidates_frame
from tests.support.llm_processes import ServerKiller, llama_servers

MODEL_PREFIX = f"{BUNDLED_FILE}@sha256:{BUNDLED_SHA256[:12]}"


@pytest.fixture(scope="module")
def server() -> Iterator[LocalLLMServer]:
    with LocalLLMServer(resolve_gguf(), threads=1, context_size=2048) as srv:
        yield srv


def local_config(tmp_path: Path, **overrides) -> GenerationConfig:
    values = dict(backend="local", cache_path=str(tmp_path / "llm_cache.duckdb"), concurrency=2, max_tokens=96,
                  llm_threads=1)
    values.update(overrides)
    return GenerationConfig(**values)


def _values(i: int) -> dict[str, str]:
    title, domain, text = PARAGRAPHS[i]
    return {"title": title, "domain": domain, "text": text, "language": "English", "image_hint": ""}


def test_bundled_gguf_is_pinned_and_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(GGUF_ENV, raising=False)
    model = resolve_gguf()
    assert model.path.name == BUNDLED_FILE and model.sha256 == BUNDLED_SHA256
    assert model.model_id == MODEL_PREFIX
    fake = tmp_path / "weights.gguf"
    fake.write_bytes(b"not a model")
    monkeypatch.setenv(GGUF_ENV, str(fake))
    with pytest.raises(GenerationError, match=r"weights\.gguf is not a GGUF file"):
        resolve_gguf()
    with pytest.raises(GenerationError, match=r"GGUF file .*missing\.gguf does not exist"):
        resolve_gguf(tmp_path / "missing.gguf")


def test_server_starts_on_loopback_and_stops_by_pid() -> None:
    srv = LocalLLMServer(resolve_gguf(), threads=1, context_size=512).start()
    pid = srv.pid
    try:
        assert srv.base_url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{srv.base_url}/models", timeout=5) as resp:
            assert [m["id"] for m in json.loads(resp.read())["data"]] == [MODEL_PREFIX]
        assert psutil.pid_exists(pid) and srv.exit_problem() is None
    finally:
        srv.stop()
    assert not psutil.pid_exists(pid)
    assert "exited with code" in (srv.exit_problem() or "")


def test_server_dies_with_a_workbench_killed_by_sigkill(tmp_path: Path) -> None:
    script = ("import sys, time\nfrom gme_data.generation.local_server import LocalLLMServer, resolve_gguf\n"
              "srv = LocalLLMServer(resolve_gguf(), threads=1, context_size=512).start()\n"
              "print(srv.pid, flush=True)\ntime.sleep(600)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).parents[2])
    try:
        server_pid = int(proc.stdout.readline())
        assert psutil.pid_exists(server_pid)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    deadline = time.monotonic() + 20
    while psutil.pid_exists(server_pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not psutil.pid_exists(server_pid) or psutil.Process(server_pid).status() == psutil.STATUS_ZOMBIE


def test_json_schema_is_probed_once_then_json_object_schema_is_used(server: LocalLLMServer) -> None:
    SCHEMA_MODE_BY_ENDPOINT.pop(server.base_url, None)
    config = GenerationConfig(backend="openai", base_url=server.base_url, model=server.model.model_id,
                              max_tokens=96, response_format="json_schema")
    client = ChatClient(config, ledger=Ledger())
    first = client.structured(load_prompt("doc2query_small"), _values(0))
    assert first.data is not None and set(first.data) == {"query", "answer"}
    assert SCHEMA_MODE_BY_ENDPOINT[server.base_url] == "json_object"
    usage = client.ledger.as_dict()
    assert usage["requests"] == 2 and usage["http_errors"] == {JSON_SCHEMA_UNSUPPORTED: 1}
    second = client.structured(load_prompt("caption_query_small"), _values(1))
    assert second.data is not None and isinstance(second.data["query"], str)
    assert client.ledger.as_dict()["requests"] == 3  # remembered: no second probe


def test_two_requests_in_flight_both_answered(server: LocalLLMServer) -> None:
    SCHEMA_MODE_BY_ENDPOINT[server.base_url] = "json_object"
    config = GenerationConfig(backend="openai", base_url=server.base_url, model=server.model.model_id,
                              max_tokens=96, concurrency=2)
    client = ChatClient(config, ledger=Ledger())
    template = load_prompt("doc2query_small")
    spans: dict[int, tuple[float, float]] = {}
    results = {}
    barrier = threading.Barrier(2)

    def ask(i: int) -> None:
        barrier.wait()
        t0 = time.monotonic()
        results[i] = client.structured(template, _values(i))
        spans[i] = (t0, time.monotonic())

    threads = [threading.Thread(target=ask, args=(i,)) for i in (2, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert all(results[i].data is not None for i in (2, 3))
    assert spans[2][0] < spans[3][1] and spans[3][0] < spans[2][1]  # both were in flight at once
    assert client.ledger.as_dict()["responses"] == 2


def test_local_run_names_model_in_lineage_stops_server_and_reruns_from_cache(tmp_path: Path) -> None:
    cands = candidates_frame(tmp_path, n=2)
    config = local_config(tmp_path)
    table, lineage, report = generate_queries(cands, config, show_progress=False)
    assert report.backend == "local" and report.generator == "llama.cpp-server"
    assert report.model == MODEL_PREFIX and report.requests > 0 and report.completion_tokens > 0
    assert set(report.prompt_versions) == {"doc2query_small", "entity_rewrite_small", "caption_query_small"}
    pid = report.llm_server["pid"]
    assert not psutil.pid_exists(pid) and pid not in {p.pid for p in llama_servers()}  # stopped, no orphan
    assert len(lineage.records) == sum(report.kept_by_style.values()) + report.dropped > 0
    for rec in lineage.records:
        assert rec.payload["model"] == MODEL_PREFIX and rec.payload["generator"] == "llama.cpp-server"
    assert set(table["model"]) <= {MODEL_PREFIX}
    store = LineageStore(tmp_path / "lineage.duckdb")
    store.write_stage("generated_queries", "s1", "run-1", lineage)
    models = store.query("SELECT DISTINCT json_extract_string(payload, '$.model') AS m FROM records")["m"]
    assert models.tolist() == [MODEL_PREFIX]

    again_table, _, again = generate_queries(cands, config, show_progress=False)
    assert again.requests == 0 and again.cache_hits > 0
    assert again_table.to_dict("records") == table.to_dict("records")
    assert not psutil.pid_exists(again.llm_server["pid"])


def test_server_killed_mid_run_stops_with_named_endpoint(tmp_path: Path, server: LocalLLMServer) -> None:
    cands = candidates_frame(tmp_path, n=12, with_images=False)
    killer = ServerKiller(after_s=1.0, skip={server.pid})
    killer.start()
    t0 = time.monotonic()
    with pytest.raises(GenerationError, match=r"local LLM server http://127\.0\.0\.1:\d+/v1 \(pid \d+, "
                                              r"SmolLM2-135M-Instruct\.Q4_1\.gguf\) exited with code -9") as err:
        generate_queries(cands, local_config(tmp_path, max_http_retries=5, backoff_base_s=2.0),
                         show_progress=False)
    killer.join(timeout=5)
    assert killer.killed_pid is not None and f"pid {killer.killed_pid}" in str(err.value)
    assert "writes nothing" in str(err.value)
    assert time.monotonic() - t0 < 90  # no 5 x backoff retries per request once the server is gone
    assert {p.pid for p in llama_servers()} <= {server.pid}


def test_no_runtime_or_weights_give_a_clear_error(tmp_path: Path) -> None:
    srv = LocalLLMServer(resolve_gguf(), python=str(tmp_path / "no-python"))
    with pytest.raises(GenerationError, match="cannot run"):
        srv.start()
    with pytest.raises(GenerationError, match="does not exist"):
        generate_queries(candidates_frame(tmp_path, n=1), local_config(tmp_path, gguf_path=str(tmp_path / "x.gguf")),
                         show_progress=False)
