"""Checkpoint state without pickle: tensors in a safetensors file, the structure around them in JSON.

Optimizer, scheduler and RNG states are nested dicts / lists / tuples of tensors and plain values.
:func:`save_state` writes ``<stem>.safetensors`` (every tensor, named ``t0, t1, ...``) and
``<stem>.json`` (the structure, each tensor replaced by ``{"__tensor__": name}``); :func:`load_state`
rebuilds it. Reading either file runs no code: a crafted checkpoint can at worst fail to load.

JSON encoding: dicts are ``{"__dict__": [[key, value], ...]}`` (keys may be ints, as in an optimizer's
``state``), tuples ``{"__tuple__": [...]}``; lists, str, int, float (NaN/inf included), bool and None
are themselves.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from gme_data.errors import InvalidInputError

FORMAT = "gme_data-state-1"
_MARKERS = ("__tensor__", "__dict__", "__tuple__")


def state_files(folder: str | Path, stem: str) -> tuple[Path, Path]:
    """``(<stem>.safetensors, <stem>.json)`` in ``folder``."""
    folder = Path(folder)
    return folder / f"{stem}.safetensors", folder / f"{stem}.json"


def _encode(value: Any, tensors: dict[str, torch.Tensor], where: str) -> Any:
    if isinstance(value, torch.Tensor):
        name = f"t{len(tensors)}"
        tensors[name] = value.detach().cpu().contiguous().clone()
        return {"__tensor__": name}
    if isinstance(value, dict):
        return {"__dict__": [[_encode(k, tensors, where), _encode(v, tensors, f"{where}.{k}")]
                             for k, v in value.items()]}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, tensors, where) for v in value]}
    if isinstance(value, list):
        return [_encode(v, tensors, where) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise InvalidInputError(f"checkpoint state {where}: cannot store a {type(value).__name__} "
                            "(only tensors, dicts, lists, tuples and plain values)")


def save_state(state: Any, folder: str | Path, stem: str) -> tuple[Path, Path]:
    """Write ``state`` as ``<stem>.safetensors`` + ``<stem>.json`` in ``folder``; returns both paths."""
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    structure = _encode(state, tensors, stem)
    st_path, js_path = state_files(folder, stem)
    save_file(tensors, str(st_path), metadata={"format": FORMAT})
    js_path.write_text(json.dumps({"format": FORMAT, "state": structure}))
    return st_path, js_path


def _decode(value: Any, tensors: dict[str, torch.Tensor], where: Path) -> Any:
    if isinstance(value, list):
        return [_decode(v, tensors, where) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) != 1 or next(iter(value)) not in _MARKERS:
        raise InvalidInputError(f"{where}: unexpected object with keys {sorted(value)[:5]} (not written by gme_data)")
    (marker, inner), = value.items()
    if marker == "__tensor__":
        if not isinstance(inner, str) or inner not in tensors:
            raise InvalidInputError(f"{where}: refers to tensor {inner!r}, which the safetensors file lacks")
        return tensors[inner]
    if not isinstance(inner, list):
        raise InvalidInputError(f"{where}: {marker} must hold a list, got {type(inner).__name__}")
    if marker == "__tuple__":
        return tuple(_decode(v, tensors, where) for v in inner)
    out = {}
    for pair in inner:
        if not isinstance(pair, list) or len(pair) != 2:
            raise InvalidInputError(f"{where}: a __dict__ entry must be a [key, value] pair, got {pair!r:.80}")
        key = _decode(pair[0], tensors, where)
        if not isinstance(key, (str, int, float, bool)) and key is not None:
            raise InvalidInputError(f"{where}: dict key must be a plain value, got {type(key).__name__}")
        out[key] = _decode(pair[1], tensors, where)
    return out


def load_state(folder: str | Path, stem: str) -> Any:
    """The state :func:`save_state` wrote; :class:`InvalidInputError` naming the file when it is
    missing, malformed or the two files do not belong together."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    st_path, js_path = state_files(folder, stem)
    for p in (st_path, js_path):
        if not p.is_file():
            raise InvalidInputError(f"checkpoint {folder}: {p.name} missing")
    try:
        raw = json.loads(js_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise InvalidInputError(f"{js_path}: unreadable ({type(exc).__name__}: {exc})") from exc
    if not isinstance(raw, dict) or raw.get("format") != FORMAT or "state" not in raw:
        raise InvalidInputError(f"{js_path}: not a gme_data checkpoint state (format {FORMAT!r} expected)")
    try:
        tensors = load_file(str(st_path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise InvalidInputError(f"{st_path}: unreadable safetensors file ({exc})") from exc
    try:
        state = _decode(raw["state"], tensors, js_path)
    except RecursionError as exc:
        raise InvalidInputError(f"{js_path}: nested too deeply") from exc
    return state
