"""Suite-wide settings.

Query generation defaults to the local llama.cpp model (``backend=local``). Tests about other stages
use the rules (``GME_DATA_LLM_BACKEND=offline-rules``) so the suite stays fast; it is set here, before
any fixture starts a subprocess (``dagster dev``, Celery workers inherit it). The tests of the local
backend choose ``local`` explicitly; ``GME_DATA_LLM_BACKEND=local make test`` runs everything with it.
"""

from __future__ import annotations

import os


def pytest_configure(config) -> None:
    os.environ.setdefault("GME_DATA_LLM_BACKEND", "offline-rules")
