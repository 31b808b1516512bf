"""Code versions of the assets, derived from what decides each stage's output (never typed by hand).

An asset's code version is a short hash over:

* its asset module's source and the sources of the ``gme_data`` packages (and sibling asset modules)
  it imports, found by reading the module's imports (infrastructure that does not shape rows, such
  as lineage storage, errors and settings, is left out);
* every prompt template under ``gme_data/generation/prompts`` for stages that call the LLM;
* its Great Expectations suite ``quality/suites/<asset>.json`` (and ``<asset>_stage2.json`` style
  siblings named after the asset);
* the defaults of the stage's ``dg.Config`` classes;
* the model identity the resources resolve at definition time: the LLM generator and model for
  stages that use ``llm``, the embedder name for stages that use ``embedder``. Trained weights are
  produced by a run, so they reach ``umrb_eval`` through ``gme_model``'s data version instead.

Changing any of them gives the asset a new code version, which Dagster shows as "code version
changed" on the asset and as "upstream code version changed" on everything downstream.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import inspect
import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import dagster as dg

ROOT = Path(__file__).resolve().parent.parent
PROMPT_DIR = ROOT / "gme_data" / "generation" / "prompts"
SUITE_DIR = ROOT / "quality" / "suites"
#: gme_data modules that store or describe data but never change a stage's rows.
INFRASTRUCTURE = {"lineage", "lineage_backend", "lineage_compact", "lineage_parquet", "errors", "settings",
                  "storage_names", "redaction", "file_hashes", "cli"}
VERSION_CHARS = 16


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def _files_of(module: str) -> list[Path]:
    """The source files a dotted ``gme_data`` / ``assets`` name stands for (a top-level package: all of it)."""
    parts = module.split(".")
    if parts[0] == "gme_data" and len(parts) > 1:
        if parts[1] in INFRASTRUCTURE:
            return []
        pkg = ROOT / "gme_data" / parts[1]
        if pkg.is_dir():
            return sorted(pkg.rglob("*.py"))
        file = ROOT / "gme_data" / f"{parts[1]}.py"
        return [file] if file.is_file() else []
    if parts[0] == "assets" and len(parts) > 1 and parts[1] != "common":
        file = ROOT / "assets" / f"{parts[1]}.py"
        return [file] if file.is_file() else []
    return []


def source_files(module_path: Path) -> list[Path]:
    """``module_path`` plus the library and sibling asset sources it imports (transitively for assets)."""
    seen: set[Path] = set()
    todo = [module_path.resolve()]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _imported_modules(path):
            for file in _files_of(name):
                if file.parent.name == "assets" and file not in seen:
                    todo.append(file)
                else:
                    seen.add(file)
    return sorted(seen)


def suite_files(asset_name: str) -> list[Path]:
    """The Great Expectations suite of ``asset_name`` (missing suite: none)."""
    file = SUITE_DIR / f"{asset_name}.json"
    return [file] if file.is_file() else []


def prompt_files() -> list[Path]:
    return sorted(PROMPT_DIR.glob("*.txt"))


def config_defaults(module: ModuleType) -> dict[str, Any]:
    """Defaults of the ``dg.Config`` classes a stage module defines, by class and field."""
    out: dict[str, Any] = {}
    for name, obj in sorted(vars(module).items()):
        if inspect.isclass(obj) and issubclass(obj, dg.Config) and obj.__module__ == module.__name__:
            out[name] = {f: repr(info.get_default(call_default_factory=True))
                         for f, info in sorted(obj.model_fields.items())}
    return out


def llm_identity() -> dict[str, str]:
    """The generator and model the default ``LLMResource`` resolves now (environment included)."""
    from dagster_project.resources import LLMResource

    try:
        gen = LLMResource().generation_config()
    except Exception as e:  # noqa: BLE001 - a bad setting fails the run later, with its own message
        return {"unresolved": type(e).__name__}
    return {"generator": str(gen.generator), "model": str(gen.model_name), "prompt_set": str(gen.prompt_set)}


def embedder_identity() -> dict[str, str]:
    """The embedder name the default ``EmbedderResource`` selects ('' = the offline default)."""
    from dagster_project.resources import EmbedderResource

    res = EmbedderResource()
    return {"model": res.model or "offline-default", "dtype": res.dtype or "-"}


def code_version(asset_name: str, module: ModuleType, resource_keys: Iterable[str],
                 extra_files: Sequence[Path] = (), identities: dict[str, Callable[[], dict]] | None = None) -> str:
    """The code version of ``asset_name`` defined in ``module`` using ``resource_keys``."""
    identities = identities if identities is not None else {"llm": llm_identity, "embedder": embedder_identity}
    keys = set(resource_keys)
    files = source_files(Path(inspect.getfile(module))) + suite_files(asset_name) + list(extra_files)
    if "llm" in keys:
        files += prompt_files()
    h = hashlib.sha256()
    for file in sorted(set(files)):
        h.update(_label(file).encode() + b"\0" + file.read_bytes() + b"\0")
    facts = {"config_defaults": config_defaults(module),
             "models": {k: identities[k]() for k in sorted(keys & set(identities))}}
    h.update(json.dumps(facts, sort_keys=True, default=str).encode())
    return h.hexdigest()[:VERSION_CHARS]


def _label(file: Path) -> str:
    """A file's name in the hash: its path in the repository (elsewhere: folder and name)."""
    return str(file.relative_to(ROOT)) if file.is_relative_to(ROOT) else f"{file.parent.name}/{file.name}"


def with_code_versions(assets: Iterable[Any]) -> list[Any]:
    """Every assets definition of ``assets`` with its derived code version set on each of its specs.

    An asset's version folds in the versions of the assets it reads (transitively), so a change
    upstream (a prompt edit in ``generated_queries``) shows on every downstream asset as "has a new
    code version" at once, not only after the upstream asset ran again. The cost: downstream
    re-runs even when the changed upstream code happens to write identical rows.
    """
    assets = list(assets)
    own: dict[dg.AssetKey, str] = {}
    parents: dict[dg.AssetKey, set[dg.AssetKey]] = {}
    for a in assets:
        if isinstance(a, dg.AssetsDefinition) and a.is_executable:
            module = importlib.import_module(a.op.compute_fn.decorated_fn.__module__)
            for key in a.keys:
                own[key] = code_version(key.to_user_string(), module, a.required_resource_keys)
                parents[key] = set(a.asset_deps.get(key, ()))
    folded: dict[dg.AssetKey, str] = {}

    def version_of(key: dg.AssetKey, path: tuple[dg.AssetKey, ...] = ()) -> str:
        if key not in folded:
            ups = sorted((p for p in parents[key] if p in own and p not in path), key=lambda k: k.to_user_string())
            text = own[key] + "".join(f"|{p.to_user_string()}={version_of(p, (*path, key))}" for p in ups)
            folded[key] = hashlib.sha256(text.encode()).hexdigest()[:VERSION_CHARS] if ups else own[key]
        return folded[key]

    return [a.map_asset_specs(lambda spec: spec.replace_attributes(code_version=version_of(spec.key)))
            if isinstance(a, dg.AssetsDefinition) and a.is_executable else a for a in assets]
