"""Shared fixtures of the Dagster end-to-end tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture()
def workbench(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh GME_DATA_HOME (state, storage, lineage) for one test; reports linked as files."""
    monkeypatch.setenv("GME_DATA_HOME", str(tmp_path / "var"))
    monkeypatch.setenv("GME_DATA_STORAGE_URL", str(tmp_path / "var" / "storage"))
    monkeypatch.delenv("GME_DATA_REPORTS_URL", raising=False)
    return tmp_path / "var"
