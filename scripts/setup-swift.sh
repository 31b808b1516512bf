#!/usr/bin/env bash
# A separate virtualenv with ModelScope's ms-swift (its pins clash with the project's), used by the test that
# reads the ms-swift embedding export with ms-swift's own dataset loader. Idempotent; safe to rerun.
#   GME_SWIFT_VENV (default .venv-swift), GME_TORCH_VERSION (default 2.13.0), GME_MS_SWIFT_VERSION (default 4.6.0)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${GME_SWIFT_VENV:-.venv-swift}
SWIFT_VERSION=${GME_MS_SWIFT_VERSION:-4.6.0}
start=$(date +%s)
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import swift, sys; sys.exit(swift.__version__ != '$SWIFT_VERSION')" 2>/dev/null; then
  "$VENV/bin/python" -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
  # The CPU build of torch first, so ms-swift's requirement on torch installs nothing more.
  "$VENV/bin/python" -m pip install -q "torch==${GME_TORCH_VERSION:-2.13.0}" 2>&1 | grep -v "^WARNING: Location" || true
  "$VENV/bin/python" -m pip install -q "ms-swift==$SWIFT_VERSION" 2>&1 | grep -v "^WARNING: Location" || true
fi
"$VENV/bin/python" -c "import swift, torch; print('setup-swift: ok (ms-swift', swift.__version__, 'torch', torch.__version__, end=')')"
echo " in $(( $(date +%s) - start )) s"
