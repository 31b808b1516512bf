"""A module-scoped fixture that runs torch on one thread (the CI box has 2 cores shared by several
jobs; small ops on 2 contended threads were ~10-40x slower than on one)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """torch.set_num_threads(1) for the module, restored after it."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
