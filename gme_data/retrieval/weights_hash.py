"""Content hashes of model weights, for cache keys that change when the weights do.

A local model folder's path says nothing about what is in it: retrained weights saved to the same
folder must not reuse vectors embedded with the old ones. :func:`folder_digest` hashes every file
of the folder (sha256); each file's hash is remembered by (real path, size, mtime, ctime, inode),
in memory and in ``<GME_DATA_HOME>/cache/file_sha256.sqlite`` (:mod:`gme_data.file_hashes`), so a
multi-gigabyte checkpoint is read once, not at every load.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from gme_data.file_hashes import DB_NAME, file_sha256

__all__ = ["DB_NAME", "file_sha256", "folder_digest"]


def folder_digest(folder: str | Path) -> str:
    """sha256 over (relative path, file sha256) of every file under ``folder`` (hidden entries
    such as ``.cache`` or ``.git`` skipped), so any change to weights, config or tokenizer changes it."""
    root = Path(folder)
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            if not path.is_file():
                continue
            h.update(path.relative_to(root).as_posix().encode())
            h.update(b"\0")
            h.update(file_sha256(path).encode())
            h.update(b"\n")
    return h.hexdigest()
