"""Threads per model call: the default follows the cores the process may use; waiting threads sleep."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from gme_data.errors import InvalidInputError
from gme_data.retrieval.cpu_threads import (
    MAX_DEFAULT_THREADS,
    THREADS_ENV,
    available_cores,
    inference_threads,
    onnx_session_options,
    spinning_threads,
)


def test_default_threads_follow_the_affinity_mask(monkeypatch):
    monkeypatch.delenv(THREADS_ENV, raising=False)
    assert available_cores() == len(os.sched_getaffinity(0))
    assert inference_threads() == min(MAX_DEFAULT_THREADS, len(os.sched_getaffinity(0)))


def test_one_core_in_the_mask_gives_one_thread():
    code = ("import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
            "from gme_data.retrieval.cpu_threads import inference_threads; print(inference_threads())")
    env = {k: v for k, v in os.environ.items() if k != THREADS_ENV}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"


def test_the_environment_sets_threads_and_bad_values_are_named(monkeypatch):
    monkeypatch.setenv(THREADS_ENV, "3")
    assert inference_threads() == 3
    for bad in ("0", "two"):
        monkeypatch.setenv(THREADS_ENV, bad)
        with pytest.raises(InvalidInputError, match=THREADS_ENV):
            inference_threads()


def test_onnx_threads_sleep_while_waiting():
    opts = onnx_session_options(2)
    assert opts.intra_op_num_threads == 2
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_torch_threads_wait_passively_unless_the_environment_says_otherwise():
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    code = "import gme_data, os; print(os.environ['OMP_WAIT_POLICY'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "PASSIVE"
    out = subprocess.run([sys.executable, "-c", code], env={**env, "OMP_WAIT_POLICY": "ACTIVE"},
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ACTIVE"


def test_runtimes_that_spin_get_one_thread_unless_the_environment_says(monkeypatch):
    monkeypatch.delenv(THREADS_ENV, raising=False)
    assert spinning_threads() == 1
    monkeypatch.setenv(THREADS_ENV, "2")
    assert spinning_threads() == 2


def test_minilm_batches_on_two_workers_give_the_vectors_of_one():
    import numpy as np

    from gme_data.retrieval.offline import MiniLMText

    texts = [f"paragraph {i} about {'birds ' * (i % 7)}and the weather in town {i * 13}" for i in range(40)]
    one = MiniLMText("onnx", threads=1).encode(texts, batch_size=8)
    two = MiniLMText("onnx", threads=2)
    assert two.workers == 2
    np.testing.assert_array_equal(two.encode(texts, batch_size=8), one)
