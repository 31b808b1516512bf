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
from dataclasses import fields
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


_KIND_SCAN_LINES = 1000  # how many non-empty lines may be tried to find the first parseable one
_SPEC_KEYS = frozenset(f.name for f in fields(SourceSpec))


def _jsonl_kind(path: Path) -> str:
    """``wikipedia`` or ``jsonl``, decided by the first line that parses (broken lines become drops later)."""
    tried, first_error = 0, ""
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                first = json.loads(line)
            except (json.JSONDecodeError, RecursionError) as exc:
                first_error = first_error or f"line {line_no}: {_why(exc)}"
                tried += 1
                if tried >= _KIND_SCAN_LINES:
                    break
                continue
            return "wikipedia" if isinstance(first, dict) and "paragraphs" in first else "jsonl"
    if first_error:
        raise InvalidInputError(f"inbox file {path}: no line is JSON in the first {tried} ({first_error})")
    return "jsonl"


def _why(exc: BaseException) -> str:
    return "nested too deeply" if isinstance(exc, RecursionError) else str(exc)


def _spec_from_file(path: Path) -> SourceSpec:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidInputError(f"source spec file {path}: not valid JSON ({_why(exc)})") from exc
    if not isinstance(raw, dict):
        raise InvalidInputError(f"source spec file {path}: expected a JSON object")
    unknown = sorted(set(raw) - _SPEC_KEYS)
    if unknown:
        raise InvalidInputError(f"source spec file {path}: unknown key(s) {unknown} "
                                f"(allowed: {', '.join(sorted(_SPEC_KEYS))})")
    p = Path(str(raw.get("path", "")))
    if raw.get("kind") != "hf" and not p.is_absolute():
        raw["path"] = str((path.parent / p).resolve())
    given = raw.get("shard")
    # the shard is a partition key (file names, SQL): slugged like a file stem, wherever it comes from
    raw["shard"] = shard_slug(str(given)) if given not in (None, "") else shard_slug(path.name[: -len(".source.json")])
    try:
        return SourceSpec(**raw)
    except TypeError as exc:
        raise InvalidInputError(f"source spec file {path}: {exc}") from exc


def spec_for_path(path: Path) -> SourceSpec | None:
    """The SourceSpec for one inbox entry, or None when it is not a source (e.g. a temp file).

    Raises InvalidInputError naming the entry when it is a source that cannot be used.
    """
    if path.name.startswith(".") or path.suffix in (".tmp", ".part"):
        return None
    if path.name.endswith(".source.json"):
        return _spec_from_file(path)
    shard = shard_slug(path.stem if path.is_file() else path.name)
    if path.is_dir():
        return SourceSpec(kind="image_folder", path=path, shard=shard)
    kind = {".jsonl": None, ".csv": "csv", ".parquet": "parquet"}.get(path.suffix.lower(), "unknown")
    if kind == "unknown":
        return None
    return SourceSpec(kind=kind or _jsonl_kind(path), path=path, shard=shard)


def scan_inbox(inbox: Path) -> tuple[dict[str, SourceSpec], dict[str, str]]:
    """Every usable inbox entry's spec by shard, and an error message for each entry that is not usable.

    Entries are isolated: one broken file is reported under its own name and every other shard
    still loads.
    """
    specs: dict[str, SourceSpec] = {}
    errors: dict[str, str] = {}
    for entry in sorted(inbox.iterdir()):
        try:
            spec = spec_for_path(entry)
        except InvalidInputError as exc:
            errors[entry.name] = str(exc)
            continue
        except Exception as exc:  # noqa: BLE001 - an unforeseen failure of one entry must not block the rest
            errors[entry.name] = f"inbox entry {entry}: {type(exc).__name__}: {exc}"
            continue
        if spec is not None:
            specs[spec.shard_name] = spec
    return specs, errors


def _entry_slug(name: str) -> str | None:
    """The shard an inbox entry name would give (None when none can be derived)."""
    stem = name[: -len(".source.json")] if name.endswith(".source.json") else Path(name).stem
    try:
        return shard_slug(stem)
    except InvalidInputError:
        return None


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
        """Usable inbox entries by shard (broken entries are left out: see :meth:`inbox_errors`)."""
        return scan_inbox(self.inbox())[0]

    def inbox_errors(self) -> dict[str, str]:
        """Inbox entries that cannot be used, each with the reason (file name -> message)."""
        return scan_inbox(self.inbox())[1]

    def shards(self) -> dict[str, SourceSpec]:
        specs = self.sample_specs() if self.include_sample else {}
        specs.update(self.inbox_specs())
        return specs

    def spec(self, shard: str) -> SourceSpec:
        errors: dict[str, str] = {}
        if shard.startswith(SAMPLE_PREFIX) and self.include_sample:
            specs = self.sample_specs()
        else:
            specs, errors = scan_inbox(self.inbox())
        broken = [msg for name, msg in errors.items() if _entry_slug(name) == shard]
        if shard not in specs and broken:
            raise InvalidInputError(f"source shard {shard!r}: its inbox entry cannot be used: {broken[0]}")
        if shard not in specs:
            raise InvalidInputError(
                f"source shard {shard!r} is unknown: not a sample shard and no inbox entry in {self.inbox()} "
                f"(known: {', '.join(sorted(self.shards())) or 'none'})"
            )
        return specs[shard]
