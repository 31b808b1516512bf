"""Read an ms-swift embedding export with ms-swift's own code; print what it saw as JSON.

Run with the ms-swift virtualenv's python (scripts/setup-swift.sh), not the project's:

    .venv-swift/bin/python tests/export/swift_reader.py <export dir>

Per split: ``swift.dataset.load_dataset`` (strict, so a malformed row raises instead of being
dropped) reads the JSONL; each row goes through ``swift.template.TemplateInputs.from_dict`` (how
the embedding template splits a row into anchor, positives and hard negatives) and every image
is opened with ``swift.template.vision_utils.load_image`` (with ``ROOT_IMAGE_DIR`` = the export).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def _paths(images: list) -> list[str]:
    return [im["path"] if isinstance(im, dict) else im for im in images or []]


def _side(std) -> dict:
    text = "".join(m["content"] for m in std.messages)
    return {"system": std.system, "tags": text.count("<image>"), "images": _paths(std.images), "text": text}


def read(export_dir: Path) -> dict:
    os.environ["ROOT_IMAGE_DIR"] = str(export_dir)
    from swift.dataset import load_dataset
    from swift.template.template_inputs import TemplateInputs
    from swift.template.vision_utils import load_image

    out: dict = {"splits": {}}
    for jsonl in sorted(export_dir.glob("*.jsonl")):
        ds, _ = load_dataset([str(jsonl)], strict=True, load_from_cache_file=False)
        rows = []
        for row in ds:
            inputs = TemplateInputs.from_dict(dict(row))
            sides = {"anchor": [_side(inputs.chosen)], "positive": [_side(s) for s in inputs.positive],
                     "negative": [_side(s) for s in inputs.negative]}
            sizes = [list(load_image(p).size) for group in sides.values() for s in group for p in s["images"]]
            rows.append({**sides, "image_sizes": sizes})
        out["splits"][jsonl.stem] = rows
    return out


if __name__ == "__main__":
    print("SWIFT_READ " + json.dumps(read(Path(sys.argv[1]).resolve())))
