"""Small easy-vqa datasets (real 64x64 shape images bundled in the easy-vqa package)."""

from __future__ import annotations

import os

import pandas as pd

COLORS = ("green", "red", "gray", "teal", "black", "yellow", "brown", "blue")
SHAPES = ("circle", "rectangle", "triangle")
INSTRUCTION = "Find a text that answers the question about the given image."


def _labels(split: str) -> tuple[dict[int, str], dict[int, str]]:
    import easy_vqa

    qs, ans, ids = easy_vqa.get_train_questions() if split == "train" else easy_vqa.get_test_questions()
    color, shape = {}, {}
    for q, a, i in zip(qs, ans, ids, strict=True):
        if a in SHAPES:
            shape[i] = a
        elif a in COLORS and "color" in q:
            color[i] = a
    return color, shape


def it2t_samples(n: int, split: str = "train", offset: int = 0) -> pd.DataFrame:
    """``filtered_samples``-style IT->T rows: (image, "what color/shape ...?") -> the answer word.

    One question per image (colour for even positions, shape for odd), ``n`` distinct images.
    """
    import easy_vqa

    paths = easy_vqa.get_train_image_paths() if split == "train" else easy_vqa.get_test_image_paths()
    color, shape = _labels(split)
    rows = []
    for pos, iid in enumerate(sorted(paths)[offset:]):
        if len(rows) >= n:
            break
        kind = "color" if pos % 2 == 0 else "shape"
        answer = (color if kind == "color" else shape).get(iid)
        if answer is None:
            continue
        question = "what color is the shape?" if kind == "color" else "what shape is in the image?"
        rows.append(dict(id=f"evqa-{split}-{iid}", combination="IT->T", instruction=INSTRUCTION,
                         query_text=question, query_image=paths[iid], pos_id=f"ans-{answer}", pos_text=answer,
                         pos_image=None, source_id=f"evqa-image-{split}-{iid}"))
    return pd.DataFrame(rows)


def answer_pool() -> pd.DataFrame:
    """The candidate pool: every colour and shape answer as a text candidate."""
    return pd.DataFrame([dict(id=f"ans-{a}", text=a, image=None) for a in COLORS + SHAPES])


def image_exists(df: pd.DataFrame) -> bool:
    return all(os.path.isfile(p) for p in df.query_image)
