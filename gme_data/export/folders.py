"""Export folders are replaced whole: a new export is built beside the old one and swapped in."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path


def swap_into_place(built: Path, out: Path) -> None:
    """Move the finished folder ``built`` to ``out``; a previous ``out`` is set aside first, then removed."""
    if out.exists():
        old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
        out.rename(old)
        built.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        built.rename(out)
