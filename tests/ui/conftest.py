"""One ``dagster dev`` stack for the UI tests; fixtures see whether their test failed (screenshots, logs)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ui.harness import UIStack, browser_page, ui_stack


@pytest.fixture(scope="session")
def stack() -> Iterator[UIStack]:
    """``dagster dev`` + report server on loopback with a throw-away home, shared by the UI tests."""
    with ui_stack() as s:
        yield s


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture()
def page(stack: UIStack, request: pytest.FixtureRequest, tmp_path: Path):
    """A fresh browser page; on failure keep a screenshot of it and show the tail of dagster's log."""
    with browser_page() as p:
        yield p
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            with contextlib.suppress(Exception):
                p.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
                print(f"browser was at {p.url}; screenshot: {tmp_path / 'failure.png'}")
            print("---- dagster dev log (tail) ----\n" + stack.logs())
