"""Build the bundled sample corpus: render its images and write Wikipedia-style manifests per shard."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from gme_data.sample_corpus.render import RENDER_VERSION, render
from gme_data.sources.spec import SourceSpec

DATA_DIR = Path(__file__).parent / "data"
CLEAN_SHARDS: tuple[str, ...] = ("wiki_01", "wiki_02", "wiki_03")
DIRTY_SHARD = "dirty"
SOURCE_NAME = "sample_wiki"


def load_articles(shard: str) -> list[dict[str, Any]]:
    """The bundled articles of one shard (with ``domain`` and image ``recipe`` fields)."""
    path = DATA_DIR / f"{shard}.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def labelled_paragraphs(shards: tuple[str, ...] = CLEAN_SHARDS) -> list[dict[str, str]]:
    """``{title, text, domain}`` for every paragraph of the clean shards (the classifier's test set)."""
    return [{"title": a["title"], "text": p["text"], "domain": a["domain"]}
            for shard in shards for a in load_articles(shard) for p in a["paragraphs"]]


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "image"


def _write_if_changed(path: Path, data: bytes) -> None:
    if path.is_file() and path.read_bytes() == data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


class RenderIndex:
    """``images/index.json``: which recipe made each image file, so a rebuild skips unchanged files."""

    def __init__(self, dest: Path):
        self.path = dest / "images" / "index.json"
        self.entries: dict[str, dict[str, str]] = (
            json.loads(self.path.read_text(encoding="utf-8")) if self.path.is_file() else {})

    def ensure(self, dest: Path, rel: str, recipe: str, title: str) -> None:
        """Render ``recipe`` to ``dest/rel`` unless the file there is already that recipe's output."""
        key = f"v{RENDER_VERSION}:{recipe}:{title}"
        entry, target = self.entries.get(rel), dest / rel
        if entry and entry["key"] == key and target.is_file() and _sha1(target.read_bytes()) == entry["sha1"]:
            return
        data = render(recipe, title)
        _write_if_changed(target, data)
        self.entries[rel] = {"key": key, "sha1": _sha1(data)}

    def save(self) -> None:
        text = json.dumps(dict(sorted(self.entries.items())), indent=1, sort_keys=True) + "\n"
        _write_if_changed(self.path, text.encode("utf-8"))


def _sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def _materialise(article: dict[str, Any], shard: str, dest: Path, render_index: RenderIndex) -> dict[str, Any]:
    """The article with each image ``recipe`` replaced by the ``path`` of the rendered file."""
    paragraphs = []
    for index, paragraph in enumerate(article["paragraphs"]):
        images = []
        for n, image in enumerate(paragraph.get("images", [])):
            image = dict(image)
            recipe = image.pop("recipe", None)
            if recipe is not None:
                suffix = f"-{index}-{n}" if (index, n) != (0, 0) else ""
                rel = f"images/{shard}/{_slug(article['title'])}{suffix}.png"
                render_index.ensure(dest, rel, recipe, article["title"])
                image["path"] = rel
            images.append(image)
        paragraphs.append({**paragraph, "images": images})
    return {**article, "paragraphs": paragraphs}


def build_sample_corpus(dest_dir: str | Path, include_dirty: bool = True,
                        show_progress: bool = True) -> list[Path]:
    """Write images and one Wikipedia-style manifest per shard into ``dest_dir``; returns the manifests.

    Deterministic and idempotent: a rebuild writes byte-identical files and rewrites nothing unchanged.
    """
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    shards = CLEAN_SHARDS + ((DIRTY_SHARD,) if include_dirty else ())
    manifests = []
    index = RenderIndex(dest)
    for shard in shards:
        articles = load_articles(shard)
        lines = [json.dumps(_materialise(a, shard, dest, index), ensure_ascii=False, sort_keys=True)
                 for a in tqdm(articles, desc=f"sample corpus {shard}", disable=not show_progress)]
        manifest = dest / f"{shard}.jsonl"
        _write_if_changed(manifest, ("\n".join(lines) + "\n").encode("utf-8"))
        manifests.append(manifest)
    index.save()
    return manifests


def sample_source_specs(manifests: list[Path]) -> list[SourceSpec]:
    """One ``wikipedia`` SourceSpec per built manifest (source ``sample_wiki``, shard = file stem)."""
    return [SourceSpec(kind="wikipedia", path=m, name=SOURCE_NAME, shard=Path(m).stem) for m in manifests]
