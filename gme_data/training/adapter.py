"""The offline default's trainable part: a residual adapter over frozen embeddings.

The frozen base embedder (by default the offline one: MiniLM text + image bridge + OCR) embeds every
training item once; those vectors are cached in memory, so training only runs the adapter, which
is fast on a CPU. The adapter is ``x + f(x)`` (``f`` linear or a small MLP, its last layer zero
initialised, so training starts exactly at the base model), one per role by default, followed by
L2 normalisation.

A trained adapter is a folder::

    manifest.json        {"kind": "adapter", "base": "offline-default", "dim": 384, ...}
    adapter.safetensors  the adapter weights

:func:`load_adapter_embedder` (or ``gme_data.load_embedder(folder)`` once hooked) turns it back into
an embedder: ``base.encode`` followed by the adapter.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gme_data.errors import InvalidInputError
from gme_data.file_hashes import stream_digest
from gme_data.mining.embedding import encode_with_instructions
from gme_data.records import Item
from gme_data.training.manifest import (
    MANIFEST,
    check_base_options,
    file_in_folder,
    hub_options,
    loading_model_folder,
    read_manifest,
)
from gme_data.training.rows import TrainRow

__all__ = ["MANIFEST", "AdapterEmbedder", "AdapterTrainable", "ResidualAdapter", "load_adapter_embedder",
           "read_manifest", "save_adapter"]
WEIGHTS = "adapter.safetensors"
KIND = "adapter"
ROLES = ("query", "candidate")


class ResidualAdapter(nn.Module):
    """``normalize(x + f_role(x))``; ``f`` is Linear(dim, dim) or Linear-GELU-Linear with ``hidden``
    units; the last layer starts at zero (identity map). ``per_role``: separate ``f`` for queries and
    candidates."""

    def __init__(self, dim: int, hidden: int | None = None, per_role: bool = True):
        super().__init__()
        self.dim, self.hidden, self.per_role = int(dim), hidden, per_role
        self.blocks = nn.ModuleDict({r: self._block() for r in (ROLES if per_role else ("shared",))})

    def _block(self) -> nn.Module:
        if self.hidden:
            last = nn.Linear(self.hidden, self.dim)
            block = nn.Sequential(nn.Linear(self.dim, self.hidden), nn.GELU(), last)
        else:
            last = block = nn.Linear(self.dim, self.dim)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        return block

    def forward(self, x: torch.Tensor, role: str) -> torch.Tensor:
        block = self.blocks[role if self.per_role else "shared"]
        return F.normalize(x + block(x), dim=-1)

    def config(self) -> dict[str, Any]:
        return {"dim": self.dim, "hidden": self.hidden, "per_role": self.per_role}



class AdapterEmbedder:
    """The embedder protocol over ``base`` + a :class:`ResidualAdapter`."""

    def __init__(self, base: Any, adapter: ResidualAdapter, name: str | None = None):
        if int(base.dim) != adapter.dim:
            raise InvalidInputError(f"adapter dim {adapter.dim} does not match base embedder "
                                    f"{getattr(base, 'name', base)!r} dim {base.dim}")
        self.base = base
        self.adapter = adapter.eval()
        self.dim = adapter.dim
        self.modalities = tuple(getattr(base, "modalities", ("text", "image", "fused")))
        self.name = name or f"{getattr(base, 'name', 'base')}+adapter"

    def encode(self, items: Sequence[Any], role: str = "query", instruction: str | None = None,
               batch_size: int | None = None, show_progress: bool = False) -> np.ndarray:
        if role not in ROLES:
            raise InvalidInputError(f"role must be 'query' or 'candidate', got {role!r}")
        kwargs: dict[str, Any] = {"role": role, "instruction": instruction, "show_progress": show_progress}
        if batch_size is not None:
            kwargs["batch_size"] = batch_size
        x = np.asarray(self.base.encode(items, **kwargs), dtype=np.float32)
        return self.transform(x, role)

    def transform(self, x: np.ndarray, role: str) -> np.ndarray:
        """Apply the adapter to base vectors ``x`` [n, dim]."""
        if len(x) == 0:
            return np.zeros((0, self.dim), np.float32)
        p = next(self.adapter.parameters())
        with torch.no_grad():
            y = self.adapter(torch.from_numpy(x).to(p.device, p.dtype), role)
        return y.float().cpu().numpy()

    def __repr__(self) -> str:
        return f"AdapterEmbedder(name={self.name!r}, dim={self.dim})"


def save_adapter(adapter: ResidualAdapter, path: str | Path, base_spec: str | None, base_name: str,
                 extra: dict[str, Any] | None = None, base_options: dict[str, Any] | None = None) -> Path:
    """Write ``manifest.json`` + ``adapter.safetensors`` into ``path``. ``base_options``: the keyword
    options that rebuild the same base (e.g. the offline default's ``ocr``, ``alpha``)."""
    from safetensors.torch import save_file

    check_base_options(base_options or {}, f"adapter folder {path}")
    unknown = sorted(set(extra or {}) - {"trained"})
    if unknown:
        raise InvalidInputError(f"adapter folder {path}: extra manifest keys {unknown} (only 'trained')")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().float().cpu().contiguous() for k, v in adapter.state_dict().items()}
    save_file(state, str(path / WEIGHTS))
    manifest = {"kind": KIND, "format_version": 1, "base": base_spec, "base_name": base_name,
                "base_options": base_options or {}, **adapter.config(), "weights": WEIGHTS, "sha1": stream_digest(path / WEIGHTS, "sha1"), **(extra or {})}
    (path / MANIFEST).write_text(json.dumps(manifest, indent=1, default=str))
    return path


def _load_base(spec: str | None, device: Any = None, allow_download: bool = False, **options: Any) -> Any:
    from gme_data import load_embedder

    if spec is None:
        raise InvalidInputError("adapter manifest names no base embedder: pass base=...")
    from gme_data.training.loading import is_trained_model_dir

    if is_trained_model_dir(spec):  # a trained base: its own base obeys the same download rule
        options = {"allow_download": allow_download, **options}
    else:
        options = {**hub_options(spec, allow_download), **options}
    return load_embedder(None if spec == "offline-default" else spec, device=device, **options)


def load_adapter_embedder(path: str | Path, base: Any = None, device: Any = None, strict: bool = True,
                          allow_download: bool = False, **options: Any) -> AdapterEmbedder:
    """A saved adapter folder -> :class:`AdapterEmbedder`. ``base``: the frozen base embedder (default:
    the one named in the manifest, loaded with ``gme_data.load_embedder``; a hub id only from the local
    cache unless ``allow_download``). ``strict``: refuse a base whose name differs from the one the
    adapter was trained on. The manifest is checked first (see :mod:`gme_data.training.manifest`)."""
    path = Path(path)
    with loading_model_folder(path):
        return _load_adapter_embedder(path, base, device, strict, allow_download, options)


def _load_adapter_embedder(path: Path, base: Any, device: Any, strict: bool, allow_download: bool,
                           options: dict[str, Any]) -> AdapterEmbedder:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    m = read_manifest(path)
    if m.get("kind") != KIND:
        raise InvalidInputError(f"{path}: manifest kind is {m.get('kind')!r}, expected {KIND!r}")
    if "dim" not in m:
        raise InvalidInputError(f"{path}: manifest has no 'dim'")
    adapter = ResidualAdapter(m["dim"], m.get("hidden"), m.get("per_role", True))
    wpath = file_in_folder(path, m.get("weights", WEIGHTS), "adapter weights")
    try:
        adapter.load_state_dict(load_file(str(wpath)))
    except (SafetensorError, RuntimeError, OSError) as exc:
        raise InvalidInputError(f"{wpath}: cannot load adapter weights ({exc})") from exc
    if device is not None:
        adapter.to(device)
    trained_options = dict(m.get("base_options") or {})
    if base is None:
        base = _load_base(m.get("base"), device, allow_download, **{**trained_options, **options})
    if strict and m.get("base_name") and getattr(base, "name", None) != m["base_name"]:
        raise InvalidInputError(f"{path}: adapter was trained on base {m['base_name']!r}, got "
                                f"{getattr(base, 'name', None)!r} (strict=False to allow)")
    settings = getattr(base, "settings", None)
    if strict and isinstance(settings, dict):
        differ = sorted(k for k, v in trained_options.items()
                        if k in settings and k != "dtype" and settings[k] != v)
        if differ:
            raise InvalidInputError(f"{path}: base settings differ from training for {differ} "
                                    f"(trained {[trained_options[k] for k in differ]}, got "
                                    f"{[settings[k] for k in differ]}; strict=False to allow)")
    sha = stream_digest(wpath, "sha1")  # the weights on disk, not what the manifest claims
    return AdapterEmbedder(base, adapter, name=f"{getattr(base, 'name', 'base')}+adapter-{sha[:12]}")


class FrozenCache:
    """In-memory base-embedder vectors keyed by (role, instruction, text, image)."""

    def __init__(self, base: Any, batch_size: int = 32, show_progress: bool = False):
        self.base = base
        self.batch_size = batch_size
        self.show_progress = show_progress
        self.vectors: dict[Hashable, np.ndarray] = {}

    @staticmethod
    def key(item: Item, role: str, instruction: str | None) -> Hashable:
        img = str(item.image) if isinstance(item.image, (str, Path)) else (
            item.content_hash() if item.image is not None else None)
        return (role, instruction if role == "query" else None, item.text, img)

    def fill(self, items: Sequence[Item], role: str, instructions: Sequence[str | None]) -> None:
        todo: dict[Hashable, tuple[Item, str | None]] = {}
        for it, ins in zip(items, instructions, strict=True):
            k = self.key(it, role, ins)
            if k not in self.vectors and k not in todo:
                todo[k] = (it, ins if role == "query" else None)
        if not todo:
            return
        keys = list(todo)
        vecs = encode_with_instructions(self.base, [todo[k][0] for k in keys], role, [todo[k][1] for k in keys],
                                        self.batch_size, self.show_progress)
        for k, v in zip(keys, vecs, strict=True):
            self.vectors[k] = v

    def get(self, items: Sequence[Item], role: str, instructions: Sequence[str | None]) -> np.ndarray:
        self.fill(items, role, instructions)
        return np.stack([self.vectors[self.key(it, role, ins)] for it, ins in zip(items, instructions, strict=True)])


class _CachedView:
    """Embedder protocol over the frozen cache + the adapter being trained (for validation)."""

    def __init__(self, owner: AdapterTrainable):
        self.owner = owner
        self.dim = owner.adapter.dim
        self.name = f"{owner.base_name}+adapter(training)"
        self.modalities = tuple(getattr(owner.base, "modalities", ("text", "image", "fused")))

    def encode(self, items, role="query", instruction=None, batch_size=None, show_progress=False) -> np.ndarray:
        items = list(items)
        with torch.no_grad():
            return self.owner.embed(items, role, [instruction] * len(items)).float().cpu().numpy()


class AdapterTrainable:
    """:class:`~gme_data.training.trainer.TrainableModel` for the offline default (or any frozen base).

    ``base``: the frozen embedder (default: ``gme_data.load_embedder()``, the offline default).
    ``base_spec``: what the saved manifest names as base (``"offline-default"`` for the default; a
    name/path ``load_embedder`` understands otherwise).
    """

    family = "adapter"

    def __init__(self, base: Any = None, base_spec: str | None = None, hidden: int | None = None,
                 per_role: bool = True, batch_size: int = 32, show_progress: bool = False, device: Any = None,
                 init_from: str | Path | None = None, base_options: dict[str, Any] | None = None):
        if isinstance(base, str):
            base_spec, base = base, None
        if base is None:
            from gme_data import load_embedder

            base_spec = base_spec or "offline-default"
            base = load_embedder(None if base_spec == "offline-default" else base_spec, **(base_options or {}))
        self.base = base
        self.base_spec = base_spec
        self.base_name = str(getattr(base, "name", type(base).__name__))
        settings = getattr(base, "settings", None)
        self.base_options = dict(base_options) if base_options is not None else (
            {k: v for k, v in settings.items() if k != "dtype"} if isinstance(settings, dict) else {})
        check_base_options(self.base_options, f"adapter over {self.base_name}")
        if init_from is not None:  # continue from a saved adapter (GME's second stage)
            self.adapter = load_adapter_embedder(init_from, base=base).adapter.train()
        else:
            self.adapter = ResidualAdapter(int(base.dim), hidden, per_role)
        self.device = torch.device(device or "cpu")
        self.adapter.to(self.device)
        self.cache = FrozenCache(base, batch_size, show_progress)

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return list(self.adapter.parameters())

    def prepare(self, rows: Sequence[TrainRow]) -> None:
        """Embed every query / candidate of ``rows`` with the frozen base once."""
        self.cache.fill([r.query for r in rows], "query", [r.instruction for r in rows])
        cands = [r.positive for r in rows] + [n for r in rows for n in r.negatives]
        self.cache.fill(cands, "candidate", [None] * len(cands))

    def embed(self, items: Sequence[Item], role: str, instructions: Sequence[str | None]) -> torch.Tensor:
        x = torch.from_numpy(self.cache.get(items, role, instructions)).to(self.device)
        return self.adapter(x, role)

    def set_train(self, mode: bool) -> None:
        self.adapter.train(mode)

    def as_embedder(self) -> _CachedView:
        return _CachedView(self)

    def save_trainable(self, path: Path) -> None:
        from safetensors.torch import save_file

        state = {k: v.detach().cpu().contiguous() for k, v in self.adapter.state_dict().items()}
        save_file(state, str(Path(path) / WEIGHTS))

    def load_trainable(self, path: Path) -> None:
        """Adapter weights from a checkpoint's ``trainable`` folder (safetensors only, never a pickle)."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        f = Path(path) / WEIGHTS
        if not f.is_file():
            legacy = " (adapter.pt, a pickle, is never loaded)" if (Path(path) / "adapter.pt").exists() else ""
            raise InvalidInputError(f"{path}: no {WEIGHTS}{legacy}")
        try:
            self.adapter.load_state_dict(load_file(str(f), device=str(self.device)))
        except (SafetensorError, RuntimeError, OSError) as exc:
            raise InvalidInputError(f"{f}: cannot load adapter weights ({exc})") from exc

    def save(self, path: Path, extra: dict[str, Any] | None = None) -> None:
        save_adapter(self.adapter, path, self.base_spec, self.base_name, {"trained": extra or {}},
                     base_options=self.base_options)

    def to_embedder(self) -> AdapterEmbedder:
        """The trained adapter over the live base embedder."""
        return AdapterEmbedder(self.base, self.adapter)
