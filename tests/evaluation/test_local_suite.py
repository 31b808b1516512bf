"""The offline local suite: builds from bundled data, loads, and its relevance is what it claims."""

from __future__ import annotations

import json
import random
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gme_data.evaluation import metrics as M
from gme_data.evaluation.loaders import load_local
from gme_data.evaluation.local_suite import (
    COLORS,
    PHOTO_PAIRS,
    PHOTOS,
    SHAPES,
    SUITE_VERSION,
    build_local_suite,
    easyvqa_attributes,
    module_documents,
)
from gme_data.evaluation.registry import LOCAL_REGISTRY, LOCAL_SUITE, TASKS, UMRB

TINY = {"n_images": 12, "n_vqa_queries": 6, "n_docs": 4, "n_photos": 6}


@pytest.fixture(scope="module")
def tiny_suite(tmp_path_factory) -> dict[str, Path]:
    return build_local_suite(tmp_path_factory.mktemp("suite") / "local", **TINY)


def test_builds_every_dataset_and_loads(tiny_suite: dict[str, Path]) -> None:
    assert list(tiny_suite) == list(LOCAL_REGISTRY)
    for slug, path in tiny_suite.items():
        data = load_local(path)
        spec = LOCAL_REGISTRY[slug]
        assert data.name == slug and data.task == spec.task and data.metric == spec.metric
        assert data.instruction == spec.instruction
        assert data.queries and data.corpus and set(data.qrels) == set(data.queries)
        q_mod = {it.modality for it in data.queries.values()}
        c_mod = {it.modality for it in data.corpus.values()}
        expected = {"T": "text", "I": "image", "IT": "fused", "VD": "image"}
        qt, ct = spec.task.split("->")
        assert q_mod == {expected[qt]} and c_mod == {expected[ct]}, slug


def test_sizes_follow_the_parameters(tiny_suite: dict[str, Path]) -> None:
    sizes = {s: load_local(p).summary() for s, p in tiny_suite.items()}
    assert sizes["local_easyvqa_t2i"]["candidates"] == 12
    assert sizes["local_easyvqa_it2t"]["queries"] == 6 and sizes["local_easyvqa_it2t"]["candidates"] <= 13
    assert sizes["local_docs_t2t"]["queries"] == 4 and sizes["local_docpages_t2vd"]["candidates"] == 4
    assert sizes["local_photos_t2i"]["queries"] == 6 == sizes["local_photos_i2t"]["candidates"]
    assert sizes["local_photos_t2it"]["queries"] == 6 and sizes["local_photos_t2it"]["candidates"] == 12
    assert sizes["local_easyvqa_it2i"]["queries"] == 6 and sizes["local_easyvqa_it2i"]["candidates"] == 12
    assert sizes["local_easyvqa_it2it"]["queries"] == 6
    assert sizes["local_easyvqa_it2it"]["candidates"] == 2 * len({(a["color"], a["shape"]) for a in
                                                                  list(easyvqa_attributes().values())[:12]})


def test_easyvqa_relevance_matches_metadata(tiny_suite: dict[str, Path]) -> None:
    attrs = easyvqa_attributes()
    data = load_local(tiny_suite["local_easyvqa_t2i"])
    for qid, judged in data.qrels.items():
        colour, shape = qid.split("-")
        assert f"{colour} {shape}" in data.queries[qid].text
        for cid in judged:
            a = attrs[int(cid[3:])]
            assert (a["color"], a["shape"]) == (colour, shape)
    vqa = load_local(tiny_suite["local_easyvqa_it2t"])
    for qid, judged in vqa.qrels.items():
        (answer,) = [vqa.corpus[c].text for c in judged]
        assert (vqa.queries[qid].text, answer) in attrs[int(qid[1:])]["qa"]


def test_documents_hide_the_summary_from_the_page() -> None:
    docs = module_documents(["heapq", "json"])
    assert [m for m, _, _ in docs] == ["heapq", "json"]
    for _, summary, body in docs:
        assert summary and summary not in body


def test_rebuild_is_skipped_when_unchanged(tiny_suite: dict[str, Path]) -> None:
    root = next(iter(tiny_suite.values())).parent
    marker = root / "local_docs_t2t" / "queries.jsonl"
    before = marker.stat().st_mtime_ns
    build_local_suite(root, **TINY)
    assert marker.stat().st_mtime_ns == before
    assert json.loads((root / "suite.json").read_text())["params"]["n_photos"] == 6
    assert len(PHOTOS) >= 20


# ----------------------------------------------------------------------------- fused-modal datasets
FUSED = ("local_photos_t2it", "local_easyvqa_it2i", "local_easyvqa_it2it")


@pytest.fixture(scope="module")
def default_suite(tmp_path_factory) -> dict[str, Path]:
    """The fused-modal datasets at their default sizes (the easy-VQA and photo parts build in seconds)."""
    return build_local_suite(tmp_path_factory.mktemp("suite") / "local")


def _pixels(path: str | Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def _trigrams(text: str) -> set[tuple[str, ...]]:
    w = _words(text)
    return {tuple(w[i:i + 3]) for i in range(len(w) - 2)}


def _expected_hit1(data, score) -> float:
    """Mean hit@1 of ranking by ``score(qid, cid)`` with ties broken at random (exact expectation)."""
    total = 0.0
    for qid, judged in data.qrels.items():
        scores = {cid: score(qid, cid) for cid in data.corpus}
        best = max(scores.values())
        top = [cid for cid, s in scores.items() if s == best]
        total += sum(1 for cid in top if judged.get(cid, 0) > 0) / len(top)
    return total / len(data.qrels)


def _vqa_attr(item_id: str, attrs: dict) -> tuple[str, str]:
    a = attrs[int(re.sub(r"^\D+", "", item_id))]
    return a["color"], a["shape"]


def test_local_suite_covers_every_umrb_task() -> None:
    assert {s.task for s in LOCAL_SUITE} == set(TASKS)
    for slug in FUSED:
        spec = LOCAL_REGISTRY[slug]
        umrb_families = {u.metric.split("@")[0] for u in UMRB if u.task == spec.task}
        assert spec.metric.split("@")[0] in umrb_families and spec.metric_key == "hit@1"
        assert spec.instruction_override and spec.instruction == spec.instruction_override
        assert spec.category == "fused-modal" and spec.note


def test_fused_datasets_are_small_real_and_fused(default_suite: dict[str, Path]) -> None:
    for slug in FUSED:
        data = load_local(default_suite[slug])
        assert 20 <= len(data.queries) <= 30 and 20 <= len(data.corpus) <= 40, slug
        q_side, c_side = data.task.split("->")
        for side, items in ((q_side, data.queries), (c_side, data.corpus)):
            for item in items.values():
                assert (item.text is not None) == ("T" in side) and (item.image is not None) == ("I" in side)
                if item.image is not None:
                    with Image.open(item.image) as img:
                        img.load()
                        assert img.mode == "RGB" and min(img.size) >= 32
        # no query image is also a candidate image
        if q_side == "IT":
            cand = {_pixels(c.image).tobytes() for c in data.corpus.values()}
            assert not any(_pixels(q.image).tobytes() in cand for q in data.queries.values())


def test_it2i_targets_are_the_edited_reference(default_suite: dict[str, Path]) -> None:
    attrs = easyvqa_attributes()
    data = load_local(default_suite["local_easyvqa_it2i"])
    kinds = set()
    for qid, judged in data.qrels.items():
        query = data.queries[qid]
        ref = _vqa_attr(qid, attrs)
        assert np.array_equal(_pixels(query.image), _pixels(attrs[int(qid[1:])]["path"]))
        named = [w for w in _words(query.text) if w in COLORS or w in SHAPES]
        assert len(named) == 1, query.text  # the text names one attribute; the other is in the image
        target = (named[0], ref[1]) if named[0] in COLORS else (ref[0], named[0])
        kinds.add("colour" if named[0] in COLORS else "shape")
        assert target != ref
        assert set(judged) == {cid for cid in data.corpus if _vqa_attr(cid, attrs) == target}
    assert kinds == {"colour", "shape"}
    assert len({q.text for q in data.queries.values()}) > 6


def test_it2it_cards_answer_the_question_about_the_same_shape(default_suite: dict[str, Path]) -> None:
    attrs = easyvqa_attributes()
    data = load_local(default_suite["local_easyvqa_it2it"])
    by_combo: dict[str, list[str]] = {}
    for cid in data.corpus:
        by_combo.setdefault(cid.split("-", 1)[1], []).append(cid)
    for cards in by_combo.values():  # two cards per combination: same image, a colour and a shape fact
        assert sorted(c.split("-")[0] for c in cards) == ["color", "shape"]
        a, b = (data.corpus[c] for c in cards)
        assert a.image == b.image and a.text != b.text
    asked = set()
    for qid, judged in data.qrels.items():
        color, shape = _vqa_attr(qid, attrs)
        question = data.queries[qid].text
        answer = dict(attrs[int(qid[1:])]["qa"])[question]  # a real easy-VQA question of this image
        (cid,) = judged
        kind = "color" if answer in COLORS else "shape"
        asked.add(kind)
        assert cid == f"{kind}-{color}-{shape}" and answer in _words(data.corpus[cid].text)
        card_image = _pixels(data.corpus[cid].image)
        assert any(np.array_equal(card_image, _pixels(a["path"])) for a in attrs.values()
                   if (a["color"], a["shape"]) == (color, shape))
    assert asked == {"color", "shape"}


def test_t2it_queries_paraphrase_and_distractors_swap_titles(default_suite: dict[str, Path]) -> None:
    assert set(PHOTO_PAIRS) == {name for name, _, _ in PHOTOS}
    captions = {Path(name).stem: cap for name, _, cap in PHOTOS}
    data = load_local(default_suite["local_photos_t2it"])
    titles = {c.text for c in data.corpus.values()}
    for qid, judged in data.qrels.items():
        (cid,) = judged
        stem, text = qid[2:], data.queries[qid].text
        assert cid == f"pair-{stem}" and text not in titles
        assert not _trigrams(text) & (_trigrams(data.corpus[cid].text) | _trigrams(captions[stem])), text
    swaps = [c for c in data.corpus if c.startswith("swap-")]
    assert len(swaps) == len(data.corpus) - len(data.queries) > 0
    for cid in swaps:
        item = data.corpus[cid]
        title_of = next(c for c in data.corpus if c.startswith("pair-") and data.corpus[c].text == item.text)
        image_of = next(c for c in data.corpus if c.startswith("pair-")
                        and np.array_equal(_pixels(data.corpus[c].image), _pixels(item.image)))
        assert title_of != image_of  # right title with another photo


def test_fused_oracle_scores_100_and_shortcuts_score_low(default_suite: dict[str, Path]) -> None:
    attrs = easyvqa_attributes()
    shortcuts = {}
    t2it = load_local(default_suite["local_photos_t2it"])
    title = {cid: item.text for cid, item in t2it.corpus.items()}
    image = {cid: item.image for cid, item in t2it.corpus.items()}

    def pair(qid: str) -> str:
        return f"pair-{qid[2:]}"

    shortcuts["local_photos_t2it"] = (
        t2it,
        lambda q, c: float(title[c] == title[pair(q)]),  # text side only: the right title
        lambda q, c: float(_pixels(image[c]).tobytes() == _pixels(image[pair(q)]).tobytes()),  # photo only
    )
    it2i = load_local(default_suite["local_easyvqa_it2i"])

    def named(q: str) -> str:
        return next(w for w in _words(it2i.queries[q].text) if w in COLORS or w in SHAPES)

    shortcuts["local_easyvqa_it2i"] = (
        it2i,
        lambda q, c: float(named(q) in _vqa_attr(c, attrs)),  # any image with the named colour/shape
        lambda q, c: float(sum(x == y for x, y in zip(_vqa_attr(c, attrs), _vqa_attr(q, attrs), strict=True))),
    )
    it2it = load_local(default_suite["local_easyvqa_it2it"])

    def asks(q: str) -> str:
        answer = dict(attrs[int(q[1:])]["qa"])[it2it.queries[q].text]
        return "color" if answer in COLORS else "shape"

    shortcuts["local_easyvqa_it2it"] = (
        it2it,
        lambda q, c: float(c.startswith(asks(q))),  # a card stating the right kind of fact
        lambda q, c: float(c.split("-", 1)[1] == "-".join(_vqa_attr(q, attrs))),  # the right shape, any fact
    )
    for slug, (data, text_only, image_only) in shortcuts.items():
        key = LOCAL_REGISTRY[slug].metric_key
        oracle = {q: {c: float(c in data.qrels[q]) for c in data.corpus} for q in data.queries}
        assert M.evaluate_mean(data.qrels, oracle, [key])[key] == 1.0
        shuffled = []
        for seed in range(10):
            rng = random.Random(seed)
            run = {q: {c: rng.random() for c in data.corpus} for q in data.queries}
            shuffled.append(M.evaluate_mean(data.qrels, run, [key])[key])
        assert sum(shuffled) / len(shuffled) < 0.15, slug
        assert _expected_hit1(data, lambda q, c: 0.0) < 0.1, slug
        # neither side of the query/candidates alone singles out the relevant candidate
        assert _expected_hit1(data, text_only) <= 0.75, slug
        assert _expected_hit1(data, image_only) <= 0.75, slug


def test_an_older_build_is_rebuilt_with_the_new_datasets(tmp_path: Path) -> None:
    root = tmp_path / "local"
    build_local_suite(root, **TINY)
    manifest = json.loads((root / "suite.json").read_text())
    assert manifest["params"]["version"] == SUITE_VERSION and set(manifest["datasets"]) == set(LOCAL_REGISTRY)
    # an earlier version's build (no fused-modal folders) is replaced, not reused
    manifest["params"]["version"] = SUITE_VERSION - 1
    (root / "suite.json").write_text(json.dumps(manifest))
    for slug in FUSED:
        shutil.rmtree(root / slug)
    out = build_local_suite(root, **TINY)
    assert all(load_local(out[slug]).qrels for slug in FUSED)
    assert json.loads((root / "suite.json").read_text())["params"]["version"] == SUITE_VERSION


def test_ensure_keeps_a_current_custom_build_and_refreshes_an_old_one(tmp_path: Path) -> None:
    from gme_data.evaluation.api import ensure_local_suite

    root = tmp_path / "local"
    ensure_local_suite(root, TINY)
    stamp = (root / "suite.json").stat().st_mtime_ns
    ensure_local_suite(root)  # no options: a current build of any size is used as it is
    assert (root / "suite.json").stat().st_mtime_ns == stamp
    assert json.loads((root / "suite.json").read_text())["params"]["n_images"] == TINY["n_images"]
    manifest = json.loads((root / "suite.json").read_text())
    manifest["params"]["version"] = SUITE_VERSION - 1
    (root / "suite.json").write_text(json.dumps(manifest))
    ensure_local_suite(root, TINY)  # an older version is rebuilt
    assert json.loads((root / "suite.json").read_text())["params"]["version"] == SUITE_VERSION
