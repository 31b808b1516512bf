"""Tests here run torch on one thread: the CI box has 2 cores shared by several jobs, and small
ops on 2 contended threads were ~10-40x slower than on one."""

from tests.support.torch_threads import one_torch_thread  # noqa: F401  (autouse)
