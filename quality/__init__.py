"""Quality gates: Great Expectations 1.x suites (``quality/suites/*.json``) run as blocking
Dagster asset checks, with a rendered HTML report per run and asset."""

from quality.gates import GateResult, load_suite, run_gate

__all__ = ["GateResult", "load_suite", "run_gate"]
