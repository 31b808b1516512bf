"""The source catalog: which raw shards exist (the ``source_shard`` partitions) and how to read each.

Shards come from two places: the bundled sample corpus (``sample-*``), and the watched inbox
folder where operators drop new raw data. In the inbox, each of these is one shard named by
its file stem: a JSONL manifest (flat rows, or Wikipedia-style articles with ``paragraphs``),
a CSV or Parquet manifest, a folder of images, or a ``<name>.source.json`` file holding a
:class:`gme_data.sources.SourceSpec` (e.g. a Hugging Face dataset id or ``save_to_disk`` path).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import dagster as dg
from pydantic import Field

from gme_data import settings
from gme_data.errors import InvalidInputError
from gme_data.sources import SourceSpec

SAMPLE_PREFIX = "sample-"
_SLUG = re.compile(r"[^a-z0-9_-]+")


def shard_slug(name: str) -> str:
    """A partition-key-safe name for a file stem."""
    slug = _SLUG.sub("-", name.lower()).strip("-")
    if not slug:
        raise InvalidInputError(f"cannot derive a shard name from {name!r}")
    return slug


def _jsonl_kind(path: Path) -> str:
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                try:
                    first = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InvalidInputError(f"inbox file {path}: first line is not JSON ({exc})") from exc
                return "wikipedia" if isinstance(first, dict) and "paragraphs" in first else "jsonl"
    return "jsonl"


def spec_for_path(path: Path) -> SourceSpec | None:
    """The SourceSpec for one inbox entry, or None when it is not a source (e.g. a temp file)."""
    if path.name.startswith(".") or path.suffix in (".tmp", ".part"):
        return None
    if path.name.endswith(".source.json"):
        raw = json.loads(path.read_text())
        if not isinstance(raw, dict):
            raise InvalidInputError(f"source spec file {path}: expected a JSON object")
        p = Path(str(raw.get("path", "")))
        if raw.get("kind") != "hf" and not p.is_absolute():
            raw["path"] = str((path.parent / p).resolve())
        raw.setdefault("shard", shard_slug(path.name[: -len(".source.json")]))
        return SourceSpec(**raw)
    shard = shard_slug(path.stem if path.is_file() else path.name)
    if path.is_dir():
        return SourceSpec(kind="image_folder", path=path, shard=shard)
    kind = {".jsonl": None, ".csv": "csv", ".parquet": "parquet"}.get(path.suffix.lower(), "unknown")
    if kind == "unknown":
        return None
    return SourceSpec(kind=kind or _jsonl_kind(path), path=path, shard=shard)


class SourceCatalogResource(dg.ConfigurableResource):
    """Resolves a ``source_shard`` partition key to the raw data behind it."""

    inbox_dir: str = Field(default="", description="Watched folder of new raw data; '' = <GME_DATA_HOME>/inbox")
    include_sample: bool = Field(default=True, description="Offer the bundled sample corpus shards")

    def inbox(self) -> Path:
        p = Path(self.inbox_dir).resolve() if self.inbox_dir else settings.home() / "inbox"
        p.mkdir(parents=True, exist_ok=True)
        return p

    def sample_specs(self) -> dict[str, SourceSpec]:
        from gme_data.sample_corpus import build_sample_corpus

        manifests = build_sample_corpus(settings.home() / "raw" / "sample", show_progress=False)
        return {f"{SAMPLE_PREFIX}{shard_slug(m.stem)}": SourceSpec(kind="wikipedia", path=m,
                                                                   shard=f"{SAMPLE_PREFIX}{shard_slug(m.stem)}")
                for m in manifests}

    def inbox_specs(self) -> dict[str, SourceSpec]:
        specs: dict[str, SourceSpec] = {}
        for entry in sorted(self.inbox().iterdir()):
            spec = spec_for_path(entry)
            if spec is not None:
                specs[spec.shard_name] = spec
        return specs

    def shards(self) -> dict[str, SourceSpec]:
        specs = self.sample_specs() if self.include_sample else {}
        specs.update(self.inbox_specs())
        return specs

    def spec(self, shard: str) -> SourceSpec:
        if shard.startswith(SAMPLE_PREFIX) and self.include_sample:
            specs = self.sample_specs()
        else:
            specs = self.inbox_specs()
        if shard not in specs:
            raise InvalidInputError(
                f"source shard {shard!r} is unknown: not a sample shard and no inbox entry in {self.inbox()} "
                f"(known: {', '.join(sorted(self.shards())) or 'none'})"
            )
        return specs[shard]
