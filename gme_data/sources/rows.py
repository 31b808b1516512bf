"""Turn raw source rows into validated raw-table rows (or recorded drops).

Every reader yields :class:`RawRow` (fields already mapped to ``id, title, text, image, url``) or
:class:`RawProblem` (a row that is broken before any field can be read). :class:`RowBuilder`
validates the fields, decodes and stores the image, gives each row a deterministic id and
records the decision in a :class:`~gme_data.lineage.StageOutput`.

Drop reasons: ``missing_field``, ``wrong_type``, ``malformed_row``, ``empty_text`` (a paragraph
needs text; its image is optional), ``empty_text_and_image``, ``image_not_found``,
``unreadable_image``, ``decompression_bomb``, ``path_outside_root`` and ``symlink_not_followed``
(an image or caption path the :class:`~gme_data.sources.policy.ReadPolicy` refuses) and
``field_too_long`` (text, title, url or id over the policy's caps).
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from gme_data.images import ImageStore, UnreadableImageError
from gme_data.lineage import StageOutput
from gme_data.records import stable_id
from gme_data.sources.policy import PathRejected, ReadPolicy
from gme_data.sources.spec import SourceSpec

STAGE = "raw_corpus"
RECORD_KIND = "raw_record"


@dataclass
class RawRow:
    """One row of a source; ``where`` names it (file and row number); ``base`` resolves image paths."""

    where: str
    fields: dict[str, Any]
    base: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: a caption file (relative to ``base``) whose content becomes ``text``, read under the policy
    text_file: str | None = None


@dataclass
class RawProblem:
    """A row that cannot be read at all (bad JSON, wrong shape)."""

    where: str
    fingerprint: Any
    reason: str
    field: str
    message: str


class RowProblem(Exception):
    """Internal: a per-row problem with its drop reason and field."""

    def __init__(self, reason: str, field_name: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.field = field_name


def is_missing(value: Any) -> bool:
    """None, NaN, or an empty / whitespace-only string."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _fingerprint_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return "sha1:" + hashlib.sha1(value).hexdigest()
    if isinstance(value, Image.Image):
        return "pil:" + hashlib.sha1(value.tobytes()).hexdigest() + f":{value.mode}:{value.size}"
    if isinstance(value, Mapping):
        return {str(k): _fingerprint_value(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_fingerprint_value(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value if isinstance(value, (str, int, float, bool)) or value is None else str(value)


def row_fingerprint(fields: Mapping[str, Any]) -> Any:
    """The content that identifies a row: its own id if it has one, else title, text, image and url."""
    given = fields.get("id")
    if not is_missing(given) and isinstance(given, (str, int, np.integer)):
        return ["id", _fingerprint_value(given)]
    return [_fingerprint_value(fields.get(k)) for k in ("title", "text", "image", "url")]


def _optional_str(fields: Mapping[str, Any], name: str) -> str | None:
    value = fields.get(name)
    if is_missing(value):
        return None
    if not isinstance(value, str):
        raise RowProblem("wrong_type", name, f"field {name!r} must be a string, got {type(value).__name__}")
    return value.strip()


class RowBuilder:
    """Collects the kept rows and the lineage of one source read."""

    def __init__(self, spec: SourceSpec, image_store: ImageStore, policy: ReadPolicy | None = None):
        self.spec = spec
        self.store = image_store
        self.policy = policy or ReadPolicy.from_env()
        self.rows: list[dict[str, Any]] = []
        self.lineage = StageOutput()
        self._seen: Counter[str] = Counter()

    def _id(self, fingerprint: Any) -> str:
        base = stable_id("raw", self.spec.source_name, fingerprint)
        n = self._seen[base]
        self._seen[base] += 1
        return base if n == 0 else stable_id("raw", self.spec.source_name, fingerprint, n)

    def add(self, item: RawRow | RawProblem) -> None:
        """Validate one row; keep it in ``rows`` or record it as dropped."""
        if isinstance(item, RawProblem):
            self._drop(self._id(item.fingerprint), item.where, item.reason, item.field, item.message)
            return
        caption_problem = None
        if item.text_file is not None:
            try:
                item.fields["text"] = self._read_caption(item.text_file, item.base)
            except RowProblem as problem:
                caption_problem = problem
        record_id = self._id(row_fingerprint(item.fields))
        try:
            if caption_problem is not None:
                raise caption_problem
            row = self._validate(item)
        except RowProblem as problem:
            self._drop(record_id, item.where, problem.reason, problem.field, str(problem))
            return
        row.update(id=record_id, source=self.spec.source_name, shard=self.spec.shard_name)
        self.rows.append(row)
        self.lineage.keep(record_id, RECORD_KIND, stage=STAGE, source=row["source"], shard=row["shard"],
                          where=item.where, has_text=row["text"] is not None,
                          has_image=row["image"] is not None, **item.extra)

    def _drop(self, record_id: str, where: str, reason: str, field_name: str, message: str) -> None:
        self.lineage.drop(record_id, RECORD_KIND, reason, stage=STAGE, source=self.spec.source_name,
                          shard=self.spec.shard_name, where=where, field=field_name,
                          message=f"{where}: {message}")

    def _validate(self, item: RawRow) -> dict[str, Any]:
        fields = item.fields
        if self.spec.text_required and "text" not in fields:
            raise RowProblem("missing_field", "text", "required field 'text' is missing")
        title = _optional_str(fields, "title")
        text = _optional_str(fields, "text")
        url = _optional_str(fields, "url")
        self._check_lengths(text, title, url, fields.get("id"))
        image_value = fields.get("image")
        has_image = not is_missing(image_value)
        if text is None and not has_image:
            raise RowProblem("empty_text_and_image", "text", "row has neither text nor an image")
        if text is None and self.spec.text_required:
            raise RowProblem("empty_text", "text", "paragraph text is empty (text is required, the image optional)")
        image_path = self._store_image(image_value, item.base) if has_image else None
        return {"title": title, "text": text, "image": image_path, "url": url}

    def _check_lengths(self, text: str | None, title: str | None, url: str | None, given_id: Any) -> None:
        cap, field_cap = self.policy.max_text_chars, self.policy.max_field_chars
        if text is not None and len(text) > cap:
            raise RowProblem("field_too_long", "text", f"text has {len(text)} characters, more than the cap "
                                                       f"of {cap} (max_text_chars)")
        for name, value in (("title", title), ("url", url), ("id", given_id)):
            if isinstance(value, str) and len(value) > field_cap:
                raise RowProblem("field_too_long", name, f"{name} has {len(value)} characters, more than the "
                                                         f"cap of {field_cap} (max_field_chars)")

    def _read_caption(self, name: str, base: Path | None) -> str | bytes:
        """A sidecar caption's content (confined like image paths; read no further than the cap allows,
        so a huge file costs nothing); bytes when it is not UTF-8 (then dropped as ``wrong_type``)."""
        try:
            path = self.policy.confine(name, base, what="caption")
        except PathRejected as exc:
            raise RowProblem(exc.reason, "text", str(exc)) from exc
        limit = 2 * self.policy.max_text_chars + 1
        try:
            with open(path, encoding="utf-8") as fh:
                content = fh.read(limit)
        except UnicodeDecodeError:
            with open(path, "rb") as fh:
                return fh.read(4 * limit)
        except OSError as exc:
            raise RowProblem("missing_field", "text", f"caption file {path}: cannot read ({exc})") from exc
        if len(content) >= limit:
            raise RowProblem("field_too_long", "text", f"caption file {path} is longer than the cap of "
                                                       f"{self.policy.max_text_chars} characters (max_text_chars)")
        return content

    def _store_image(self, value: Any, base: Path | None) -> str:
        source = resolve_image_value(value, base, self.policy)
        try:
            return str(self.store.put_source(source))   # decoded once per distinct source bytes
        except UnreadableImageError as exc:
            reason = "decompression_bomb" if "decompression bomb" in str(exc).lower() else "unreadable_image"
            raise RowProblem(reason, "image", str(exc)) from exc
        except OSError as exc:
            raise RowProblem("unreadable_image", "image", f"image {source}: cannot read ({exc})") from exc


def resolve_image_value(value: Any, base: Path | None,
                        policy: ReadPolicy | None = None) -> str | Path | bytes | Image.Image:
    """A path (resolved against ``base``, confined by ``policy`` and checked), bytes, a PIL image, or an
    HF image dict. ``policy`` None: :meth:`ReadPolicy.from_env`."""
    if isinstance(value, Image.Image):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, Mapping):
        if value.get("bytes") is not None:
            return resolve_image_value(value["bytes"], base, policy)
        if not is_missing(value.get("path")):
            return resolve_image_value(value["path"], base, policy)
        raise RowProblem("wrong_type", "image", "image dict has neither 'bytes' nor 'path'")
    if isinstance(value, (str, Path)):
        try:
            path = (policy or ReadPolicy.from_env()).confine(value, base, what="image")
        except PathRejected as exc:
            raise RowProblem(exc.reason, "image", str(exc)) from exc
        if not path.is_file():
            raise RowProblem("image_not_found", "image", f"image file not found: {path}")
        return path
    raise RowProblem("wrong_type", "image",
                     f"field 'image' must be a path, bytes or an image, got {type(value).__name__}")

