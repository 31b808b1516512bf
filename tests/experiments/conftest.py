"""Experiment-grid tests train on one torch thread (the CI box has 2 shared cores)."""

from tests.support.torch_threads import one_torch_thread  # noqa: F401  (autouse)
