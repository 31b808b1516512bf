"""Imports point one way: the import-linter contracts of pyproject.toml hold, and they bite."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("gme_data", "quality", "assets", "dagster_project")


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` on the packages under ``root`` with the repository's contracts."""
    exe = Path(sys.executable).with_name("lint-imports")
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(exe), "--no-cache", str(ROOT / "pyproject.toml")], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


def test_contracts_kept() -> None:
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 kept, 0 broken" in done.stdout


def test_every_orchestration_module_sits_in_a_layer() -> None:
    """A new module of dagster_project must be placed in a layer, else the layers say nothing about it."""
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    layers = next(c for c in contracts if c["id"] == "layers")["layers"]
    named = {m.strip() for layer in layers for m in layer.split(":")}
    modules = {f"dagster_project.{p.stem}" for p in (ROOT / "dagster_project").glob("*.py") if p.stem != "__init__"}
    assert modules - named == set()


def test_an_upward_import_breaks_the_contracts(tmp_path: Path) -> None:
    """A leaf resource module that imports the wiring (the old executors <-> definitions knot) is caught."""
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.json", "*.txt"))
    executors = tmp_path / "dagster_project" / "executors.py"
    executors.write_text(executors.read_text() + "\n\ndef _jobs():\n    from dagster_project import definitions\n"
                         "    return definitions.defs\n")
    done = lint_imports(tmp_path)
    assert done.returncode != 0
    assert "dagster_project.executors is not allowed to import dagster_project.definitions" in done.stdout
    assert "0 kept, 2 broken" in done.stdout


def test_stage_modules_import_no_other_stage_module() -> None:
    """Shared helpers live in assets.common or the library, so a stage module never imports a sibling."""
    import grimp

    graph = grimp.build_graph("assets", cache_dir=None)
    for module in sorted(graph.modules - {"assets", "assets.common"}):
        siblings = graph.find_modules_directly_imported_by(module) - {"assets.common"}
        assert siblings == set(), f"{module} imports {sorted(siblings)}"
