"""What a source's rows may point at and how long their text may be (:class:`ReadPolicy`).

Image and caption paths inside a manifest are data, not configuration, so they are confined:

* a relative path resolves against the source's own folder (the manifest's folder, the image folder,
  the ``save_to_disk`` folder); ``..``, ``~`` and absolute paths are fine only while they stay inside
  that folder or one of the explicitly allowed absolute roots (``GME_DATA_ALLOWED_ROOTS``, a
  ``os.pathsep``-separated list; deployment configuration, deliberately not a run-config field);
* a symbolic link on the way (a linked file or folder) is not followed unless
  ``GME_DATA_FOLLOW_SYMLINKS=1``, and even then its target must stay inside an allowed root.

A rejected path is a recorded drop of that row (``path_outside_root`` or ``symlink_not_followed``),
never a failure of the shard. Text fields are capped too: a row whose ``text`` is longer than
``max_text_chars`` (default 20,000, the candidates gate's bound) or whose title / url / id is longer
than ``max_field_chars`` is dropped as ``field_too_long``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from gme_data.errors import InvalidInputError

ROOTS_ENV = "GME_DATA_ALLOWED_ROOTS"
SYMLINKS_ENV = "GME_DATA_FOLLOW_SYMLINKS"
MAX_TEXT_ENV = "GME_DATA_MAX_TEXT_CHARS"
MAX_FIELD_ENV = "GME_DATA_MAX_FIELD_CHARS"
DEFAULT_MAX_TEXT_CHARS = 20_000
DEFAULT_MAX_FIELD_CHARS = 4_096


class PathRejected(Exception):
    """A manifest path that the policy refuses; ``reason`` is the lineage drop reason."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def _norm(path: str | Path) -> Path:
    return Path(os.path.normpath(os.path.abspath(path)))


@dataclass(frozen=True)
class ReadPolicy:
    """Path confinement and size caps for reading one source (see the module docstring)."""

    allowed_roots: tuple[Path, ...] = ()
    follow_symlinks: bool = False
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS
    max_field_chars: int = DEFAULT_MAX_FIELD_CHARS
    _roots: tuple[Path, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        roots = []
        for r in self.allowed_roots:
            if not Path(r).is_absolute():
                raise InvalidInputError(f"read policy: allowed root {str(r)!r} must be an absolute path")
            roots.append(_norm(r))
        object.__setattr__(self, "_roots", tuple(roots))
        for name in ("max_text_chars", "max_field_chars"):
            if getattr(self, name) < 1:
                raise InvalidInputError(f"read policy: {name} must be >= 1, got {getattr(self, name)}")

    @classmethod
    def from_env(cls, **overrides) -> ReadPolicy:
        """The policy configured by ``GME_DATA_ALLOWED_ROOTS``, ``GME_DATA_FOLLOW_SYMLINKS``,
        ``GME_DATA_MAX_TEXT_CHARS`` and ``GME_DATA_MAX_FIELD_CHARS`` (``overrides`` win)."""
        roots = tuple(Path(p) for p in os.environ.get(ROOTS_ENV, "").split(os.pathsep) if p.strip())
        follow = os.environ.get(SYMLINKS_ENV, "").strip().lower() in ("1", "true", "yes")
        kwargs = {"allowed_roots": roots, "follow_symlinks": follow}
        for key, env, default in (("max_text_chars", MAX_TEXT_ENV, DEFAULT_MAX_TEXT_CHARS),
                                  ("max_field_chars", MAX_FIELD_ENV, DEFAULT_MAX_FIELD_CHARS)):
            raw = os.environ.get(env, "").strip()
            try:
                kwargs[key] = int(raw) if raw else default
            except ValueError as exc:
                raise InvalidInputError(f"{env}={raw!r}: expected an integer") from exc
        return cls(**{**kwargs, **overrides})

    def confine(self, value: str | Path, root: Path | None, what: str = "image") -> Path:
        """The normalised path ``value`` names (relative ones against ``root``), or :class:`PathRejected`
        when it leads outside ``root`` and the allowed roots or through a symbolic link."""
        text = str(value).strip()
        path = Path(os.path.expanduser(text))
        if not path.is_absolute():
            if root is None:
                raise PathRejected("path_outside_root", f"{what} path {text!r} is relative, but the source "
                                                        "has no folder to resolve it against")
            path = Path(root) / path
        lexical = _norm(path)
        roots = ((_norm(root),) if root is not None else ()) + self._roots
        inside = next((r for r in roots if lexical.is_relative_to(r)), None)
        if inside is None:
            raise PathRejected("path_outside_root", f"{what} path {text!r} leads outside the source folder "
                               f"{root} ({lexical}); allow other absolute roots with {ROOTS_ENV}")
        probe = inside
        for part in lexical.relative_to(inside).parts:
            probe = probe / part
            if probe.is_symlink():
                if not self.follow_symlinks:
                    raise PathRejected("symlink_not_followed", f"{what} path {text!r}: {probe} is a symbolic "
                                       f"link, not followed (set {SYMLINKS_ENV}=1 to follow links)")
                real = Path(os.path.realpath(lexical))
                if not any(real.is_relative_to(Path(os.path.realpath(r))) for r in roots):
                    raise PathRejected("path_outside_root", f"{what} path {text!r}: the link {probe} points "
                                       f"outside the source folder and the allowed roots ({real})")
                break
        return lexical
