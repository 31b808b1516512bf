"""Finding 1 of issue 14 (manifests): a trained model folder's manifest.json is checked before loading.

Unknown keys and base options are refused, ``weights`` must be a file of the folder, a ``base`` chain
is bounded and cycles are named, and a hub id as base is never downloaded unless asked (checked
against a real HTTP server standing in for the hub, in a subprocess with the hub reachable).
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
import torch

from gme_data.errors import InvalidInputError
from gme_data.training.adapter import ResidualAdapter, load_adapter_embedder, save_adapter

from .hashed_text import HashedTrigramEmbedder

ROOT = Path(__file__).resolve().parents[2]


def _adapter_folder(path: Path, base_spec: str | None = "hashed", **manifest_changes) -> Path:
    torch.manual_seed(0)
    save_adapter(ResidualAdapter(HashedTrigramEmbedder.dim), path, base_spec, "hashed-trigrams")
    m = json.loads((path / "manifest.json").read_text())
    m.update(manifest_changes)
    (path / "manifest.json").write_text(json.dumps(m))
    return path


def test_manifest_with_unknown_key_is_refused(tmp_path):
    folder = _adapter_folder(tmp_path / "m", trust_remote_code=True)
    with pytest.raises(InvalidInputError, match=r"unknown keys \['trust_remote_code'\]"):
        load_adapter_embedder(folder, base=HashedTrigramEmbedder())


def test_manifest_base_options_outside_the_allow_list_are_refused(tmp_path):
    folder = _adapter_folder(tmp_path / "m", base_spec="offline-default",
                             base_options={"ocr": False, "trust_remote_code": True})
    with pytest.raises(InvalidInputError, match=r"base_options \['trust_remote_code'\] are not allowed"):
        load_adapter_embedder(folder)


@pytest.mark.parametrize("how", ["dotdot", "absolute", "symlink"])
def test_manifest_weights_outside_the_folder_are_refused(tmp_path, how):
    other = _adapter_folder(tmp_path / "other")
    target = other / "adapter.safetensors"
    folder = _adapter_folder(tmp_path / "m")
    if how == "dotdot":
        weights = "../other/adapter.safetensors"
    elif how == "absolute":
        weights = str(target)
    else:
        weights = "linked.safetensors"
        (folder / weights).symlink_to(target)
    m = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({**m, "weights": weights}))
    with pytest.raises(InvalidInputError, match="weights"):
        load_adapter_embedder(folder, base=HashedTrigramEmbedder())


def test_manifest_base_that_names_its_own_folder_is_a_clear_error(tmp_path):
    folder = tmp_path / "self"
    _adapter_folder(folder, base_spec=str(folder))
    with pytest.raises(InvalidInputError, match="refers back to a folder being loaded"):
        load_adapter_embedder(folder)
    a, b = tmp_path / "a", tmp_path / "b"
    _adapter_folder(a, base_spec=str(b))
    _adapter_folder(b, base_spec=str(a))
    with pytest.raises(InvalidInputError, match=r"refers back .*/a -> .*/b -> .*/a"):
        load_adapter_embedder(a)


def test_manifest_base_chain_is_bounded(tmp_path):
    names = [tmp_path / f"m{i}" for i in range(7)]
    for here, below in zip(names, names[1:], strict=False):
        _adapter_folder(here, base_spec=str(below))
    _adapter_folder(names[-1], base_spec="offline-default")
    with pytest.raises(InvalidInputError, match="nested more than 4 deep"):
        load_adapter_embedder(names[0])


def test_manifest_that_is_not_json_or_too_deep_is_a_named_error(tmp_path):
    folder = _adapter_folder(tmp_path / "m")
    (folder / "manifest.json").write_text("[" * 100_000)
    from gme_data.retrieval import load_embedder
    from gme_data.training.loading import is_trained_model_dir

    assert not is_trained_model_dir(folder)
    with pytest.raises(InvalidInputError, match="manifest.json: invalid JSON"):
        load_adapter_embedder(folder, base=HashedTrigramEmbedder())
    with pytest.raises(InvalidInputError):   # not a trained folder, nor a Qwen2-VL checkpoint
        load_embedder(str(folder))


class _HubStandIn(http.server.BaseHTTPRequestHandler):
    requests: list[str] = []

    def _answer(self):
        type(self).requests.append(f"{self.command} {self.path}")
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_HEAD = _answer

    def log_message(self, *args):
        pass


def _gme_lora_folder(path: Path, base: str) -> Path:
    (path / "adapter").mkdir(parents=True)
    (path / "adapter" / "adapter_config.json").write_text("{}")
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(1)}, str(path / "adapter" / "adapter_model.safetensors"))
    (path / "manifest.json").write_text(json.dumps({"kind": "gme-lora", "format_version": 1, "base": base,
                                                    "base_in_folder": False, "base_name": base, "dim": 64}))
    return path


def test_hub_id_base_is_not_downloaded_unless_allowed(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HubStandIn)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    lora = _gme_lora_folder(tmp_path / "lora", "someorg/not-in-any-cache")
    adapter = _adapter_folder(tmp_path / "adapter", base_spec="someorg/not-in-any-cache")
    script = textwrap.dedent(f"""
        import json
        from gme_data.errors import InvalidInputError
        from gme_data import load_embedder
        out = {{}}
        for label, folder, extra in (("lora", {str(lora)!r}, {{}}), ("adapter", {str(adapter)!r}, {{}}),
                                     ("lora_allowed", {str(lora)!r}, {{"allow_download": True}})):
            try:
                load_embedder(folder, **extra)
                out[label] = "loaded"
            except InvalidInputError as exc:
                out[label] = str(exc)
            print("STEP", label, flush=True)
            input()
        print("RESULT", json.dumps(out), flush=True)
    """)
    env = {**os.environ, "HF_ENDPOINT": f"http://127.0.0.1:{server.server_port}", "HF_HUB_OFFLINE": "0",
           "TRANSFORMERS_OFFLINE": "0", "HF_HOME": str(tmp_path / "hf-home"), "HF_HUB_ETAG_TIMEOUT": "5",
           "HF_HUB_DOWNLOAD_TIMEOUT": "5", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    seen = {}
    try:
        for _ in range(3):
            line = proc.stdout.readline()
            while line and not line.startswith("STEP"):
                line = proc.stdout.readline()
            assert line, proc.stderr.read()[-3000:]
            seen[line.split()[1]] = sum("not-in-any-cache" in r for r in _HubStandIn.requests)
            proc.stdin.write("\n")
            proc.stdin.flush()
        result = json.loads([ln for ln in proc.stdout.read().splitlines() if ln.startswith("RESULT")][0][7:])
    finally:
        proc.kill()
        proc.wait()
        server.shutdown()
    assert seen["lora"] == 0 and seen["adapter"] == 0, _HubStandIn.requests
    assert "not-in-any-cache" in result["lora"] and "not-in-any-cache" in result["adapter"]
    assert seen["lora_allowed"] > 0     # the stand-in hub is reachable: asked for, a download is tried
