"""The loopback OpenAI-compatible test server itself: routes, errors, scripting."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from tests.support.openai_server import OpenAICompatServer


def _post(url: str, body: bytes, key: str = "k") -> tuple[int, dict]:
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_routes_errors_and_schema_filling():
    with OpenAICompatServer(api_key="k") as srv:
        assert srv.base_url.startswith("http://127.0.0.1:")
        status, body = _post(srv.base_url + "/nope", b"{}")
        assert status == 404 and "no route" in body["error"]["message"]
        status, body = _post(srv.base_url + "/chat/completions", b"not json")
        assert status == 400
        status, _ = _post(srv.base_url + "/chat/completions", b'{"model": "m", "messages": []}', key="bad")
        assert status == 401
        schema = {"type": "object", "properties": {"query": {"type": "string"}, "n": {"type": "integer"}}}
        request = {"model": "m", "messages": [{"role": "user", "content": "Koalas sleep twenty hours a day"}],
                   "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}}
        status, body = _post(srv.base_url + "/chat/completions", json.dumps(request).encode())
        assert status == 200
        answer = json.loads(body["choices"][0]["message"]["content"])
        assert set(answer) == {"query", "n"} and "Koalas sleep" in answer["query"]
        assert body["usage"] == {"prompt_tokens": 6, "completion_tokens": len(body["choices"][0]["message"]
                                                                              ["content"].split()),
                                 "total_tokens": body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]}
        assert srv.request_count == 1  # only authorised, well-formed chat requests are recorded
    with pytest.raises(ValueError, match="unknown server behaviour"):
        srv.script(["explode"])
