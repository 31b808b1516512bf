"""``manifest.json`` of a trained model folder: read, checked against an allow-list, loaded safely.

A manifest is data from disk, so nothing in it reaches a loader unchecked:

* only the keys its kind writes are accepted, each with its type (``base_options`` only the
  embedder settings that rebuild a base, with plain values: no ``trust_remote_code``, no paths);
* ``weights`` is a bare file name inside the folder (no path, no symlink leading out of it);
* a ``base`` that is itself a trained folder is followed at most :data:`MAX_BASE_DEPTH` deep, and a
  folder that (directly or through others) names itself is refused;
* a hub id as ``base`` loads from the local Hugging Face cache only, unless the caller passes
  ``allow_download=True``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from gme_data.errors import InvalidInputError

MANIFEST = "manifest.json"
KINDS = ("adapter", "gme-lora")
MAX_BASE_DEPTH = 4
MAX_MANIFEST_BYTES = 1 << 20

#: base_options a manifest may carry: the settings of the offline default and of GME embedders.
BASE_OPTION_KEYS = frozenset({
    "alpha", "text_backend", "temperature", "top_k", "ocr", "ocr_min_boxes", "ocr_min_chars", "ocr_weight",
    "pooling", "query_instructions",
    "position_mode", "min_image_tokens", "max_image_tokens", "max_length", "attn_implementation",
})

_INT, _STR, _BOOL, _DICT = (int,), (str,), (bool,), (dict,)
_OPT_STR = (str, type(None))
_COMMON: dict[str, tuple[type, ...]] = {
    "kind": _STR, "format_version": _INT, "base": _OPT_STR, "base_name": _OPT_STR, "dim": _INT,
    "sha1": _OPT_STR, "trained": _DICT,
}
#: key -> accepted JSON types, per kind (exactly what the trainers write).
KEYS: dict[str, dict[str, tuple[type, ...]]] = {
    "adapter": {**_COMMON, "base_options": _DICT, "hidden": (int, type(None)), "per_role": _BOOL,
                "weights": _STR},
    "gme-lora": {**_COMMON, "base_in_folder": _BOOL, "position_mode": _STR, "min_image_tokens": _INT,
                 "max_image_tokens": _INT, "max_length": _INT, "lora": _DICT},
}
_SHA1 = re.compile(r"[0-9a-f]{40}")
_LOADING: ContextVar[tuple[str, ...]] = ContextVar("gme_data_model_folders_loading", default=())


def _type_ok(value: Any, types: tuple[type, ...]) -> bool:
    if isinstance(value, bool) and bool not in types:
        return False  # JSON true is not an int here
    return isinstance(value, types)


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The checked manifest of a trained model folder; :class:`InvalidInputError` naming the folder
    and the offending key when it is absent, broken or holds anything the trainers do not write."""
    mpath = Path(path) / MANIFEST
    if not mpath.is_file():
        raise InvalidInputError(f"{path}: no {MANIFEST} (not a trained gme_data model folder)")
    if mpath.stat().st_size > MAX_MANIFEST_BYTES:
        raise InvalidInputError(f"{mpath}: larger than {MAX_MANIFEST_BYTES} bytes (not a trainer manifest)")
    try:
        m = json.loads(mpath.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise InvalidInputError(f"{mpath}: invalid JSON ({type(exc).__name__}: {exc})") from exc
    if not isinstance(m, dict):
        raise InvalidInputError(f"{mpath}: expected a JSON object, got {type(m).__name__}")
    kind = m.get("kind")
    if kind not in KINDS:
        raise InvalidInputError(f"{mpath}: unknown model kind {kind!r} (expected one of {KINDS})")
    allowed = KEYS[kind]
    unknown = sorted(set(m) - set(allowed))
    if unknown:
        raise InvalidInputError(f"{mpath}: unknown keys {unknown} for kind {kind!r} (allowed: {sorted(allowed)})")
    for key, value in m.items():
        if not _type_ok(value, allowed[key]):
            raise InvalidInputError(f"{mpath}: {key!r} must be {' or '.join(t.__name__ for t in allowed[key])}, "
                                    f"got {type(value).__name__}")
    if "dim" in m and not 0 < m["dim"] <= 65536:
        raise InvalidInputError(f"{mpath}: dim must be in 1..65536, got {m['dim']}")
    if m.get("sha1") is not None and not _SHA1.fullmatch(m["sha1"]):
        raise InvalidInputError(f"{mpath}: sha1 must be 40 hex digits")
    check_base_options(m.get("base_options") or {}, str(mpath))
    return m


def check_base_options(options: dict[str, Any], where: str) -> None:
    """Refuse base options outside :data:`BASE_OPTION_KEYS` or with non-plain values."""
    bad = sorted(str(k) for k in options if k not in BASE_OPTION_KEYS)
    if bad:
        raise InvalidInputError(f"{where}: base_options {bad} are not allowed (allowed: {sorted(BASE_OPTION_KEYS)})")
    for k, v in options.items():
        if not isinstance(v, (str, int, float, bool)) and v is not None:
            raise InvalidInputError(f"{where}: base_options[{k!r}] must be a plain value, got {type(v).__name__}")


def file_in_folder(folder: str | Path, name: str, what: str) -> Path:
    """``folder/name`` for a bare file ``name`` that stays inside ``folder`` (symlinks resolved)."""
    folder = Path(folder)
    if not name or name in (".", "..") or "/" in name or "\\" in name or name.startswith("~") \
            or Path(name).is_absolute():
        raise InvalidInputError(f"{folder}: {what} must be a bare file name inside the folder, got {name!r}")
    path = folder / name
    if not path.resolve().is_relative_to(folder.resolve()):
        raise InvalidInputError(f"{folder}: {what} {name!r} leads outside the folder (symlink)")
    if not path.is_file():
        raise InvalidInputError(f"{folder}: {what} {name} missing")
    return path


@contextmanager
def loading_model_folder(path: str | Path) -> Iterator[None]:
    """Mark ``path`` as being loaded while the block runs: a base chain that comes back to a folder
    already being loaded, or runs deeper than :data:`MAX_BASE_DEPTH`, raises :class:`InvalidInputError`."""
    key = str(Path(path).resolve())
    chain = _LOADING.get()
    if key in chain:
        cycle = " -> ".join([*chain[chain.index(key):], key])
        raise InvalidInputError(f"{path}: manifest base refers back to a folder being loaded ({cycle})")
    if len(chain) >= MAX_BASE_DEPTH:
        raise InvalidInputError(f"{path}: base models nested more than {MAX_BASE_DEPTH} deep "
                                f"({' -> '.join([*chain, key])})")
    token = _LOADING.set((*chain, key))
    try:
        yield
    finally:
        _LOADING.reset(token)


def hub_options(spec: str, allow_download: bool) -> dict[str, Any]:
    """Loader options for a manifest's ``base``: a name that is neither the offline default nor a local
    folder is a hub id, which loads from the local cache only unless downloads were allowed."""
    from gme_data.retrieval import OFFLINE_NAMES

    if spec in OFFLINE_NAMES or Path(spec).expanduser().is_dir() or allow_download:
        return {}
    return {"local_files_only": True}
