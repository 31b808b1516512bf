"""File names for report pages from asset, partition and run names (which come from data).

A partition key may hold ``/``, ``..`` or other characters that must not steer a write outside the
reports folder: each name becomes one percent-quoted path component, and links to it quote it again.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from gme_data.storage_names import path_segment


def segment(name: str) -> str:
    """``name`` as one path component: percent-quoted, never a separator, ``.`` or ``..``."""
    return path_segment(name)


def run_dir(reports_root: Path, run_id: str) -> Path:
    """``<reports_root>/<run_id>``: the folder of one run's reports and its overview."""
    return Path(reports_root) / segment(run_id)


def report_stem(asset_key: str, partition: str | None) -> str:
    """``<asset>[__<partition>]``, the stem of a stage report's HTML, JSON and ``_files`` folder."""
    return segment(asset_key + (f"__{partition}" if partition else ""))


def href(relative_path: str) -> str:
    """A relative file path as a link target (each component quoted again, ``/`` kept)."""
    return quote(relative_path, safe="/")
