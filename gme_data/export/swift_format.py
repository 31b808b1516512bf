"""ms-swift's embedding format (``swift sft --task_type embedding --loss_type infonce``).

One JSON object per line, as ms-swift's embedding docs define it (docs/source_en/BestPractices/Embedding.md,
"Format for InfoNCE"):

* ``messages``: the anchor (query), ``[{"role": "system", "content": <instruction>}, {"role": "user", ...}]``;
  GME puts a query's task instruction in the system turn (candidates get the template's default);
* ``positive_messages`` / ``negative_messages``: lists of message lists (one per positive / hard negative);
* ``images``, ``positive_images``, ``negative_images``: image paths aligned with those lists; each message
  list holds one ``<image>`` tag per image, placed before its text (GME's ``{IMG}{text}`` order).
  Every row carries every key (``[]`` when empty): ms-swift reads a key absent from one row as ``None``,
  and a ``None`` ``negative_messages`` breaks its ``TemplateInputs`` for that row.

Images are copied into ``images/`` next to the JSONL files and referenced by relative path, so the
folder moves as one piece; run ``swift`` from inside it (or set ``ROOT_IMAGE_DIR`` to it).
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from gme_data.errors import ExportError
from gme_data.export.folders import swap_into_place
from gme_data.export.hf_dataset import _as_list, _split_names
from gme_data.tables import value_or_none

IMAGE_TAG = "<image>"
IMAGES_DIR = "images"


@dataclass
class SwiftExport:
    """The folder, its JSONL file per split, rows per split, image files and negatives per row."""

    path: Path
    files: dict[str, Path]
    rows: dict[str, int]
    images: int
    negatives_per_row: dict[int, int]

    def as_metadata(self) -> dict[str, Any]:
        return {"path": str(self.path), "files": {s: str(p) for s, p in self.files.items()}, "rows": self.rows,
                "images": self.images, "negatives_per_row": {str(k): v for k, v in self.negatives_per_row.items()}}


class _ImageCopier:
    """Copies each source image once into ``<root>/images/`` and returns its relative path."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.copied: dict[str, str] = {}

    def __call__(self, path: Any, row_id: Any) -> str | None:
        p = value_or_none(path)
        if p is None:
            return None
        src = str(p)
        if src not in self.copied:
            name = Path(src).name
            rel = f"{IMAGES_DIR}/{name}"
            if rel in self.copied.values():  # same file name from another folder
                rel = f"{IMAGES_DIR}/{len(self.copied)}-{name}"
            (self.root / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
            try:
                shutil.copyfile(src, self.root / rel)
            except OSError as exc:
                raise ExportError(f"swift export: row {row_id!r}: cannot copy image {src} "
                                  f"({exc.strerror or exc})") from exc
            self.copied[src] = rel
        return self.copied[src]


def _turn(text: Any, image: str | None) -> tuple[dict[str, str], list[str]]:
    t = value_or_none(text)
    content = (IMAGE_TAG if image else "") + ("" if t is None else str(t))
    return {"role": "user", "content": content}, ([image] if image else [])


def swift_rows(table: pd.DataFrame, image_path: Any = None) -> Iterator[dict[str, Any]]:
    """The table's rows in ms-swift's InfoNCE format. ``image_path(path, row_id)`` maps a source image
    to the path written (default: unchanged)."""
    to_path = image_path or (lambda p, _rid: value_or_none(p))
    for row in table.to_dict("records"):
        rid = row.get("id")
        query, q_imgs = _turn(row.get("query_text"), to_path(row.get("query_image"), rid))
        if not query["content"]:
            raise ExportError(f"swift export: row {rid!r} has neither query text nor query image")
        messages = ([{"role": "system", "content": str(value_or_none(row["instruction"]))}]
                    if value_or_none(row.get("instruction")) is not None else []) + [query]
        pos, p_imgs = _turn(row.get("pos_text"), to_path(row.get("pos_image"), rid))
        if not pos["content"]:
            raise ExportError(f"swift export: row {rid!r} has neither positive text nor positive image")
        texts, images = _as_list(row.get("neg_texts")), _as_list(row.get("neg_images"))
        negs, n_imgs = [], []
        for j in range(max(len(texts), len(images))):
            turn, imgs = _turn(texts[j] if j < len(texts) else None,
                               to_path(images[j] if j < len(images) else None, rid))
            if turn["content"]:
                negs.append([turn])
                n_imgs.append(imgs)
        # every key in every row (empty lists where there is nothing), so all rows share one Arrow schema:
        # ms-swift reads a key missing from a row as None, and None negatives fail its TemplateInputs
        out: dict[str, Any] = {"messages": messages, "images": q_imgs,
                               "positive_messages": [[pos]], "positive_images": [p_imgs],
                               "negative_messages": negs, "negative_images": n_imgs}
        yield out


def export_swift_embedding(table: pd.DataFrame, out_dir: str | Path) -> SwiftExport:
    """Write ``<split>.jsonl`` per split and ``images/`` under ``out_dir`` (replaced whole, atomically)."""
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    copier = _ImageCopier(tmp)
    rows: dict[str, int] = {}
    negatives: dict[int, int] = {}
    try:
        for split in _split_names(table):
            view = table if "split" not in table.columns else table[table["split"] == split]
            with open(tmp / f"{split}.jsonl", "w", encoding="utf-8") as fh:
                for r in swift_rows(view, copier):
                    fh.write(json.dumps(r, ensure_ascii=False) + "\n")
                    k = len(r.get("negative_messages", []))
                    negatives[k] = negatives.get(k, 0) + 1
            rows[split] = len(view)
        swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return SwiftExport(path=out, files={s: out / f"{s}.jsonl" for s in rows}, rows=rows,
                       images=len(set(copier.copied.values())), negatives_per_row=dict(sorted(negatives.items())))


def swift_train_command(export_dir: str | Path, gpus: int = 8, model: str = "iic/gme-Qwen2-VL-2B-Instruct") -> str:
    """The documented multi-GPU ``swift sft`` command for GME on an export (ms-swift 4.x argument names;
    InfoNCE at GME's temperature 0.03, in-batch plus the rows' hard negatives, LoRA, DeepSpeed ZeRO-3)."""
    has_val = (Path(export_dir) / "validation.jsonl").is_file()
    return "\n".join([
        f"cd {export_dir} && \\",
        f"NPROC_PER_NODE={gpus} MAX_PIXELS=1003520 INFONCE_TEMPERATURE=0.03 INFONCE_USE_BATCH=True \\",
        "swift sft \\",
        f"    --model {model} \\",
        "    --task_type embedding --loss_type infonce \\",
        "    --tuner_type lora --lora_rank 8 \\",
        "    --dataset train.jsonl \\",
        *(["    --val_dataset validation.jsonl \\"] if has_val else ["    --split_dataset_ratio 0.01 \\"]),
        "    --torch_dtype bfloat16 --num_train_epochs 1 \\",
        f"    --per_device_train_batch_size 2 --gradient_accumulation_steps {max(1, 64 // gpus)} \\",
        "    --learning_rate 5e-5 --warmup_ratio 0.05 \\",
        "    --deepspeed zero3 --dataloader_drop_last true --lazy_tokenize true \\",
        "    --eval_strategy steps --eval_steps 100 --save_steps 100 --logging_steps 5 \\",
        "    --output_dir output",
    ])
