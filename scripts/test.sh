#!/usr/bin/env bash
# Run the whole test suite (lint first). Assumes scripts/setup.sh ran.
set -euo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false GX_ANALYTICS_ENABLED=False
ruff check gme_data assets dagster_project quality tests benchmarks scripts
lint-imports  # the layer and no-cycle contracts of pyproject.toml
python -m pytest tests -q --durations=15 "$@"
