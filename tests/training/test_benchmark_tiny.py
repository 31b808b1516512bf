"""benchmarks/train_throughput.py --tiny runs on CPU and prints its table."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("peft")


def test_train_throughput_tiny(capsys):
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "train_throughput.py"
    spec = importlib.util.spec_from_file_location("train_throughput", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    rows = mod.main(["--tiny", "--steps", "1", "--warmup", "0", "--chunk", "0", "3"])
    assert len(rows) == 2 and all(r["samples/s"] > 0 and r["peak_GiB"] > 0 for r in rows)
    out = capsys.readouterr().out
    assert "samples/s" in out and "LoRA" in out and "gradient checkpointing on" in out
