"""The ``local`` suite: ten small retrieval datasets, one or more per UMRB task, built offline from bundled data.

Written in the local layout (:mod:`gme_data.evaluation.loaders`), one folder per dataset, so the
whole harness runs in CI without network. Sizes are small (at most 60 candidates per dataset by
default, 40 for the fused-modal ones; ~400 image encodings in all) and adjustable (``n_images``,
``n_vqa_queries``, ``n_docs``, ``n_photos``). Measured: the offline default embedder needs ~140
CPU-seconds for the whole default suite (1-2.5 minutes on two cores), most of it OCR of the page
images; the three fused-modal datasets add ~20 of them.

==========================  ======  =================================================================
dataset                     task    content
==========================  ======  =================================================================
local_docs_t2t              T->T    Python stdlib module summaries -> the rest of their docstrings
local_easyvqa_i2i           I->I    easy-VQA shape image -> other images with the same shape+colour
local_easyvqa_t2i           T->I    "a red triangle" style captions (from easy-VQA's QA metadata) -> images
local_photos_t2i            T->I    captions written here -> bundled scikit-image / scikit-learn photos
local_docpages_t2vd         T->VD   module summaries -> PIL-rendered pages of the docstrings
local_photos_i2t            I->T    the same photos -> their captions
local_photos_t2it           T->IT   descriptions in other words -> (photo, short title) pairs; title-swapped
                                    pairs (right title, wrong photo) are distractors
local_easyvqa_it2t          IT->T   easy-VQA image + question -> its answer (13 possible answers)
local_easyvqa_it2i          IT->I   CIRR-style: reference image + "the same shape, but blue" -> images of
                                    the edited colour/shape
local_easyvqa_it2it         IT->IT  image + easy-VQA question -> the (image, fact) card of the same
                                    colour/shape that states the asked attribute (two cards each)
==========================  ======  =================================================================

easy-VQA images show one coloured shape; its questions ("what color is the shape?", "what shape is
in the image?") give each image's colour and shape, from which captions and relevance follow. The
fused-modal easy-VQA queries use images after the first ``n_images`` (never among the candidates),
and neither their text nor their image alone identifies the relevant candidates.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
import shutil
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from gme_data.errors import SourceError
from gme_data.evaluation.registry import LOCAL_REGISTRY

SUITE_VERSION = 3
SHAPES = ("circle", "rectangle", "triangle")
COLORS = ("red", "green", "blue", "yellow", "gray", "teal", "black", "brown")

#: Bundled photos (file, package) with captions written for this suite.
PHOTOS: tuple[tuple[str, str, str], ...] = (
    ("astronaut.png", "skimage", "an astronaut in an orange space suit posing with a helmet in front of a flag"),
    ("brick.png", "skimage", "a grayscale texture of a brick wall"),
    ("camera.png", "skimage", "a black and white photo of a man looking through a camera on a tripod in a field"),
    ("cell.png", "skimage", "a microscope image of a single round cell on a gray background"),
    ("chelsea.png", "skimage", "a close-up of a tabby cat's face with green eyes"),
    ("chessboard_RGB.png", "skimage", "a black and white checkerboard pattern"),
    ("clock_motion.png", "skimage", "a motion-blurred photo of a round wall clock"),
    ("coffee.png", "skimage", "a cup of coffee on a red saucer with a spoon on a wooden table"),
    ("coins.png", "skimage", "many old coins arranged in rows on a dark background"),
    ("color.png", "skimage", "a colour wheel showing the spectrum of hues fading to white in the centre"),
    ("grass.png", "skimage", "a grayscale close-up texture of grass blades"),
    ("gravel.png", "skimage", "a grayscale texture of small gravel stones"),
    ("horse.png", "skimage", "a black silhouette of a horse on a white background"),
    ("hubble_deep_field.jpg", "skimage", "a deep space telescope image full of distant galaxies"),
    ("ihc.png", "skimage", "a microscope image of tissue stained brown and blue"),
    ("logo.png", "skimage", "a round orange and green logo with a snake"),
    ("moon.png", "skimage", "the cratered surface of the moon in grayscale"),
    ("motorcycle_left.png", "skimage", "a red motorcycle parked in a garage in front of shelves"),
    ("page.png", "skimage", "a scanned page of printed text about region-based segmentation"),
    ("phantom.png", "skimage", "a simulated medical scan of a head, the Shepp-Logan phantom"),
    ("retina.jpg", "skimage", "a photograph of the retina of an eye with red blood vessels"),
    ("rocket.jpg", "skimage", "a rocket standing on a launch pad at night"),
    ("text.png", "skimage", "handwritten characters on a sheet of paper seen at an angle"),
    ("china.jpg", "sklearn", "a Chinese pagoda temple on a hill beside a lake"),
    ("flower.jpg", "sklearn", "an orange dahlia flower in bloom"),
)

#: Per bundled photo: (title, query) for the T->IT pairs. Titles are short, WebQA-style; queries describe
#: the photo in other words than both its title and its PHOTOS caption (no shared word trigram).
PHOTO_PAIRS: dict[str, tuple[str, str]] = {
    "astronaut.png": ("Official NASA portrait of Eileen Collins",
                      "a space traveller in her flight suit holding a helmet, with the stars and stripes behind"),
    "brick.png": ("Masonry texture", "rows of building blocks joined by mortar, shown without colour"),
    "camera.png": ("The cameraman", "a photographer outdoors peering into equipment set on three legs, monochrome"),
    "cell.png": ("Light microscopy sample", "one living cell magnified many times"),
    "chelsea.png": ("Chelsea the cat", "a striped house pet with bright eyes staring straight ahead"),
    "chessboard_RGB.png": ("Checkerboard test pattern", "alternating dark and light squares like a board for chess"),
    "clock_motion.png": ("Clock with motion blur", "a timepiece hanging indoors, smeared because the shot was moving"),
    "coffee.png": ("Morning coffee", "a hot drink and teaspoon resting on a crimson plate, on wood"),
    "coins.png": ("Ancient coins from Pompeii", "several rows of antique metal money seen from above"),
    "color.png": ("Hue and saturation chart", "a circle of every hue that turns pale toward the middle"),
    "grass.png": ("Lawn texture", "densely packed thin leaves of a meadow, in black and white"),
    "gravel.png": ("Pebble ground texture", "lots of tiny rocks covering the ground, without colour"),
    "horse.png": ("Horse silhouette", "the dark outline of a riding animal seen from the side"),
    "hubble_deep_field.jpg": ("Hubble Deep Field", "countless faraway star systems in the dark sky"),
    "ihc.png": ("Immunohistochemistry slide", "a magnified tissue section coloured with brownish and bluish dye"),
    "logo.png": ("scikit-image logo", "an emblem showing a snake, coloured green and orange"),
    "moon.png": ("Lunar surface", "a close-up of craters on Earth's natural satellite"),
    "motorcycle_left.png": ("Red motorbike, left view", "a two-wheeled motor vehicle standing indoors next to storage racks"),
    "page.png": ("Scanned book page", "printed paragraphs explaining how to split a picture into regions"),
    "phantom.png": ("Shepp-Logan phantom", "a synthetic skull cross-section used to test tomography"),
    "retina.jpg": ("Fundus photograph", "the back of a human eye showing its veins"),
    "rocket.jpg": ("Falcon 9 awaiting liftoff", "a space launch vehicle standing upright on its pad after dark"),
    "text.png": ("Handwriting photo", "hand-drawn letters on paper photographed from an oblique viewpoint"),
    "china.jpg": ("Summer Palace, Beijing", "a tiered Buddhist tower on a hillside above the water"),
    "flower.jpg": ("Dahlia close-up", "a single orange garden blossom with many petals"),
}

#: Composed-image-retrieval edits (IT->I): change the colour or the shape of the reference image.
COLOUR_EDITS: tuple[str, ...] = ("the same shape, but {color}", "make it {color} instead",
                                 "keep the shape and change its colour to {color}")
SHAPE_EDITS: tuple[str, ...] = ("a {shape} of the same colour", "the same colour, but a {shape}",
                                "keep the colour and turn it into a {shape}")
#: Candidate texts of the IT->IT cards (infobox-like fields): one colour and one shape card per combination.
COLOUR_FACT = "Color: {color}."
SHAPE_FACT = "Shape: {shape}."
MAX_FUSED_CANDIDATES = 40
MAX_FUSED_QUERIES = 30

#: Stdlib modules whose docstrings make the document datasets (summary paragraph -> the rest).
DOC_MODULES: tuple[str, ...] = (
    "argparse", "cmd", "colorsys", "configparser", "copy", "difflib", "doctest", "fileinput", "fnmatch",
    "ftplib", "getopt", "gettext", "hashlib", "heapq", "inspect", "itertools", "json", "mimetypes",
    "optparse", "pickle", "pprint", "pyclbr", "random", "re", "sched", "shelve", "socketserver", "sqlite3",
    "string", "struct", "subprocess", "timeit", "tokenize", "uuid", "wave", "zlib",
)


# ----------------------------------------------------------------------------- writing helpers
def _write_dataset(root: Path, slug: str, queries: list[dict[str, Any]], corpus: list[dict[str, Any]],
                   qrels: list[tuple[str, str, int]], extra: dict[str, Any] | None = None) -> Path:
    spec = LOCAL_REGISTRY[slug]
    d = root / slug
    d.mkdir(parents=True, exist_ok=True)
    with (d / "queries.jsonl").open("w", encoding="utf-8") as fh:
        for q in queries:
            fh.write(json.dumps(q, ensure_ascii=False) + "\n")
    with (d / "corpus.jsonl").open("w", encoding="utf-8") as fh:
        for c in corpus:
            fh.write(json.dumps(c, ensure_ascii=False) + "\n")
    with (d / "qrels.tsv").open("w", encoding="utf-8") as fh:
        fh.write("query-id\tcorpus-id\tscore\n")
        for qid, cid, s in qrels:
            fh.write(f"{qid}\t{cid}\t{s}\n")
    meta = {"name": slug, "task": spec.task, "metric": spec.metric, "instruction": spec.instruction,
            "description": spec.note, **(extra or {})}
    (d / "dataset.json").write_text(json.dumps(meta, indent=2))
    return d


def _copy_image(src: Path, dst: Path, max_side: int = 512) -> str:
    dst.parent.mkdir(parents=True, exist_ok=True)
    img = Image.open(src)
    img.load()
    if img.mode in ("RGBA", "LA", "P"):
        rgba = img.convert("RGBA")
        bg = Image.new("RGB", rgba.size, (255, 255, 255))
        bg.paste(rgba, mask=rgba.split()[-1])
        img = bg
    else:
        img = img.convert("RGB")
    img.thumbnail((max_side, max_side))
    if dst.suffix.lower() in (".jpg", ".jpeg"):
        img.save(dst, format="JPEG", quality=88)
    else:
        img.save(dst, format="PNG")
    return dst.name


# ----------------------------------------------------------------------------- easy-VQA
def easyvqa_attributes() -> dict[int, dict[str, Any]]:
    """Per easy-VQA test image: ``shape``, ``color``, ``path`` and its ``qa`` pairs."""
    try:
        import easy_vqa
    except ImportError as exc:  # pragma: no cover
        raise SourceError("the local suite needs the easy-vqa package (pip install easy-vqa)") from exc
    texts, answers, image_ids = easy_vqa.get_test_questions()
    paths = easy_vqa.get_test_image_paths()
    info: dict[int, dict[str, Any]] = {}
    for q, a, i in zip(texts, answers, image_ids, strict=True):
        rec = info.setdefault(int(i), {"qa": []})
        rec["qa"].append((q, a))
        if a in SHAPES and q.startswith("what") and "shape" in q and "color" not in q:
            rec["shape"] = a
        elif a in COLORS and q.startswith("what") and "color" in q:
            rec["color"] = a
    out = {}
    for i in sorted(info):
        rec = info[i]
        if "shape" in rec and "color" in rec and i in paths:
            rec["path"] = Path(paths[i])
            out[i] = rec
    return out


def _easyvqa_datasets(root: Path, n_images: int, n_vqa_queries: int) -> list[Path]:
    attrs = easyvqa_attributes()
    ids_all = list(attrs)
    ids = ids_all[:n_images]
    combos: dict[tuple[str, str], list[int]] = {}
    for i in ids:
        combos.setdefault((attrs[i]["color"], attrs[i]["shape"]), []).append(i)
    written = []
    # T->I: one caption per colour/shape combination, every image of the combination is relevant
    slug = "local_easyvqa_t2i"
    corpus = [{"id": f"img{i}", "image": f"images/{_copy_image(attrs[i]['path'], root / slug / 'images' / f'{i}.png')}"}
              for i in ids]
    queries, qrels = [], []
    for (color, shape), members in sorted(combos.items()):
        qid = f"{color}-{shape}"
        queries.append({"id": qid, "text": f"a picture of a {color} {shape} on a plain background"})
        qrels += [(qid, f"img{i}", 1) for i in members]
    written.append(_write_dataset(root, slug, queries, corpus, qrels))
    # I->I: the first image of each combination (with >= 2 members) queries the others
    slug = "local_easyvqa_i2i"
    query_imgs = {members[0] for members in combos.values() if len(members) >= 2}
    queries, qrels = [], []
    for (_color, _shape), members in sorted(combos.items()):
        if len(members) < 2:
            continue
        q = members[0]
        queries.append({"id": f"q{q}", "image": f"images/{_copy_image(attrs[q]['path'], root / slug / 'images' / f'q{q}.png')}"})
        qrels += [(f"q{q}", f"img{i}", 1) for i in members[1:]]
    corpus = [{"id": f"img{i}", "image": f"images/{_copy_image(attrs[i]['path'], root / slug / 'images' / f'{i}.png')}"}
              for i in ids if i not in query_imgs]
    written.append(_write_dataset(root, slug, queries, corpus, qrels))
    # IT->T: image + question -> answer; alternate "what" and yes/no questions over the images
    slug = "local_easyvqa_it2t"
    answers = sorted({a for i in ids for _, a in attrs[i]["qa"]})
    corpus = [{"id": f"ans-{a}", "text": a} for a in answers]
    queries, qrels = [], []
    for j, i in enumerate(ids[:n_vqa_queries]):
        qa = attrs[i]["qa"]
        open_question = j % 3 != 2  # two in three ask "what ...", the rest are yes/no questions
        q, a = next((x for x in qa if x[0].startswith("what") == open_question), qa[0])
        img = _copy_image(attrs[i]["path"], root / slug / "images" / f"{i}.png")
        queries.append({"id": f"q{i}", "text": q, "image": f"images/{img}"})
        qrels.append((f"q{i}", f"ans-{a}", 1))
    written.append(_write_dataset(root, slug, queries, corpus, qrels))
    held_out = ids_all[n_images:]  # query images of the fused datasets: never among their candidates
    pool = ids[:MAX_FUSED_CANDIDATES]
    n_fused = min(n_vqa_queries, MAX_FUSED_QUERIES)
    written.append(_easyvqa_it2i(root, attrs, pool, held_out, n_fused))
    written.append(_easyvqa_it2it(root, attrs, ids, held_out, n_fused))
    return written


def _it2i_modification(color: str, shape: str, j: int, present: set[tuple[str, str]]) -> tuple[str, str, str] | None:
    """``(text, target colour, target shape)``: change one attribute of ``(color, shape)`` to one present."""
    colour_options = [c for c in COLORS if c != color and (c, shape) in present]
    shape_options = [s for s in SHAPES if s != shape and (color, s) in present]
    kinds = ["colour", "shape"] if j % 2 == 0 else ["shape", "colour"]
    for kind in kinds:
        if kind == "colour" and colour_options:
            c = colour_options[(j // 2) % len(colour_options)]
            return COLOUR_EDITS[(j // 2) % len(COLOUR_EDITS)].format(color=c), c, shape
        if kind == "shape" and shape_options:
            s = shape_options[(j // 2) % len(shape_options)]
            return SHAPE_EDITS[(j // 2) % len(SHAPE_EDITS)].format(shape=s), color, s
    return None


def _easyvqa_it2i(root: Path, attrs: dict[int, dict[str, Any]], pool: list[int], held_out: list[int],
                  n_queries: int) -> Path:
    """IT->I, composed image retrieval: reference image + "the same shape, but blue" -> target images."""
    slug = "local_easyvqa_it2i"
    present = {(attrs[i]["color"], attrs[i]["shape"]) for i in pool}
    corpus = [{"id": f"img{i}", "image": f"images/{_copy_image(attrs[i]['path'], root / slug / 'images' / f'{i}.png')}"}
              for i in pool]
    queries, qrels = [], []
    for i in held_out:
        if len(queries) >= n_queries:
            break
        edit = _it2i_modification(attrs[i]["color"], attrs[i]["shape"], len(queries), present)
        if edit is None:
            continue
        text, color, shape = edit
        img = _copy_image(attrs[i]["path"], root / slug / "images" / f"q{i}.png")
        queries.append({"id": f"q{i}", "text": text, "image": f"images/{img}"})
        qrels += [(f"q{i}", f"img{c}", 1) for c in pool if (attrs[c]["color"], attrs[c]["shape"]) == (color, shape)]
    return _write_dataset(root, slug, queries, corpus, qrels)


def _easyvqa_it2it(root: Path, attrs: dict[int, dict[str, Any]], ids: list[int], held_out: list[int],
                   n_queries: int) -> Path:
    """IT->IT: image + question -> the (image, fact) card of the same shape stating the asked attribute.

    Each colour/shape combination gets two cards built on one of its images, a colour fact and a shape
    fact; a query needs its image (which combination) and its question (which fact).
    """
    slug = "local_easyvqa_it2it"
    card_image: dict[tuple[str, str], int] = {}
    for i in ids:
        combo = (attrs[i]["color"], attrs[i]["shape"])
        if combo not in card_image and len(card_image) < MAX_FUSED_CANDIDATES // 2:
            card_image[combo] = i
    corpus = []
    for (color, shape), i in card_image.items():
        img = f"images/{_copy_image(attrs[i]['path'], root / slug / 'images' / f'{i}.png')}"
        corpus.append({"id": f"color-{color}-{shape}", "text": COLOUR_FACT.format(color=color), "image": img})
        corpus.append({"id": f"shape-{color}-{shape}", "text": SHAPE_FACT.format(shape=shape), "image": img})
    queries, qrels = [], []
    for i in held_out:
        if len(queries) >= n_queries:
            break
        color, shape = attrs[i]["color"], attrs[i]["shape"]
        if (color, shape) not in card_image:
            continue
        asks = "color" if len(queries) % 2 == 0 else "shape"
        answer = color if asks == "color" else shape
        question = next((q for q, a in attrs[i]["qa"] if q.startswith("what") and a == answer), None)
        if question is None:
            continue
        img = _copy_image(attrs[i]["path"], root / slug / "images" / f"q{i}.png")
        queries.append({"id": f"q{i}", "text": question, "image": f"images/{img}"})
        qrels.append((f"q{i}", f"{asks}-{color}-{shape}", 1))
    return _write_dataset(root, slug, queries, corpus, qrels)


# ----------------------------------------------------------------------------- photos
def _photo_source(name: str, package: str) -> Path | None:
    """Path of a bundled photo, found without importing the (slow to import) package."""
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    base = Path(next(iter(spec.submodule_search_locations)))
    p = base / ("data" if package == "skimage" else "datasets/images") / name
    return p if p.is_file() else None


def _photo_datasets(root: Path, n_photos: int) -> list[Path]:
    photos = [(Path(n).stem, src, cap) for n, pkg, cap in PHOTOS if (src := _photo_source(n, pkg)) is not None]
    photos = photos[:n_photos]
    if len(photos) < min(5, n_photos):
        raise SourceError("the local suite needs scikit-image's bundled photos (pip install scikit-image)")
    written = []
    slug = "local_photos_t2i"
    corpus = [{"id": f"photo-{s}", "image": f"images/{_copy_image(src, root / slug / 'images' / f'{s}.jpg')}"}
              for s, src, _ in photos]
    queries = [{"id": f"cap-{s}", "text": cap} for s, _, cap in photos]
    written.append(_write_dataset(root, slug, queries, corpus, [(f"cap-{s}", f"photo-{s}", 1) for s, _, _ in photos]))
    slug = "local_photos_i2t"
    queries = [{"id": f"photo-{s}", "image": f"images/{_copy_image(src, root / slug / 'images' / f'{s}.jpg')}"}
               for s, src, _ in photos]
    corpus = [{"id": f"cap-{s}", "text": cap} for s, _, cap in photos]
    written.append(_write_dataset(root, slug, queries, corpus, [(f"photo-{s}", f"cap-{s}", 1) for s, _, _ in photos]))
    written.append(_photos_t2it(root, [(s, src) for s, src, _ in photos]))
    return written


def _photos_t2it(root: Path, photos: list[tuple[str, Path]]) -> Path:
    """T->IT, WebQA-style: a description -> (photo, title) pairs, plus title-swapped distractor pairs.

    A distractor pairs photo ``k+1`` with the title of photo ``k``: the right title with the wrong photo
    for one query, the right photo with the wrong title for another, so neither modality alone suffices.
    """
    slug = "local_photos_t2it"
    names = {Path(n).stem: n for n, _, _ in PHOTOS}
    images = {s: f"images/{_copy_image(src, root / slug / 'images' / f'{s}.jpg')}" for s, src in photos}
    titles = {s: PHOTO_PAIRS[names[s]][0] for s, _ in photos}
    corpus = [{"id": f"pair-{s}", "text": titles[s], "image": images[s]} for s, _ in photos]
    n = len(photos)
    n_swapped = max(0, min(n, MAX_FUSED_CANDIDATES - n)) if n > 1 else 0
    for k in range(n_swapped):
        (s, _), (other, _) = photos[k], photos[(k + 1) % n]
        corpus.append({"id": f"swap-{other}-{s}", "text": titles[s], "image": images[other]})
    queries = [{"id": f"q-{s}", "text": PHOTO_PAIRS[names[s]][1]} for s, _ in photos]
    return _write_dataset(root, slug, queries, corpus, [(f"q-{s}", f"pair-{s}", 1) for s, _ in photos],
                          extra={"swapped_distractors": n_swapped})


# ----------------------------------------------------------------------------- documents
def module_documents(modules: Sequence[str] = DOC_MODULES) -> list[tuple[str, str, str]]:
    """``(module, summary, body)`` from module docstrings; the module's name is masked in the summary."""
    docs = []
    for name in modules:
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        doc = inspect.getdoc(mod) or ""
        paras = [p.strip() for p in re.split(r"\n\s*\n", doc) if p.strip()]
        if len(paras) < 2:
            continue
        summary = " ".join(paras[0].split())
        summary = re.sub(rf"^(module\s+)?{re.escape(name)}(\.py)?(\s+module)?\s*-+\s*", "", summary, flags=re.I)
        summary = re.sub(rf"^The {re.escape(name)} module\b", "This module", summary)
        summary = summary[:1].upper() + summary[1:]
        body = "\n\n".join(paras[1:])
        if len(summary) < 20 or len(body) < 150:
            continue
        docs.append((name, summary, body))
    return docs


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def render_page(title: str, body: str, page_no: int, size: tuple[int, int] = (680, 880),
                max_lines: int = 16) -> Image.Image:
    """A document page: running header, title, wrapped body text (at most ``max_lines``), page number.

    Pages are kept short (16 lines by default) because OCR time, which dominates the offline
    embedder's cost on pages, grows with the number of text lines.
    """
    w, h = size
    lines_left = max_lines
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    small, title_font, text_font = _font(13), _font(26), _font(16)
    draw.text((40, 18), "Python standard library reference", fill=(110, 110, 110), font=small)
    draw.line((40, 38, w - 40, 38), fill=(180, 180, 180), width=1)
    draw.text((40, 52), title, fill="black", font=title_font)
    y = 100
    for para in body.split("\n\n"):
        for line in textwrap.wrap(" ".join(para.split()), width=72) or [""]:
            if y > h - 60 or lines_left <= 0:
                break
            draw.text((40, y), line, fill=(20, 20, 20), font=text_font)
            y += 21
            lines_left -= 1
        y += 10
        if y > h - 60 or lines_left <= 0:
            break
    draw.text((w // 2 - 10, h - 32), str(page_no), fill=(110, 110, 110), font=small)
    return img


def _document_datasets(root: Path, n_docs: int) -> list[Path]:
    docs = module_documents()[:n_docs]
    written = []
    slug = "local_docs_t2t"
    corpus = [{"id": f"doc-{m}", "title": f"{m} module", "text": " ".join(body.split())[:1500]} for m, _, body in docs]
    queries = [{"id": f"q-{m}", "text": summary} for m, summary, _ in docs]
    written.append(_write_dataset(root, slug, queries, corpus, [(f"q-{m}", f"doc-{m}", 1) for m, _, _ in docs]))
    slug = "local_docpages_t2vd"
    (root / slug / "pages").mkdir(parents=True, exist_ok=True)
    corpus = []
    for n, (m, _, body) in enumerate(docs, 1):
        render_page(f"{m} module", body, n).save(root / slug / "pages" / f"{m}.png")
        corpus.append({"id": f"page-{m}", "image": f"pages/{m}.png"})
    queries = [{"id": f"q-{m}", "text": summary} for m, summary, _ in docs]
    written.append(_write_dataset(root, slug, queries, corpus, [(f"q-{m}", f"page-{m}", 1) for m, _, _ in docs]))
    return written


# ----------------------------------------------------------------------------- entry point
def build_local_suite(out_dir: str | Path, n_images: int = 60, n_vqa_queries: int = 40, n_docs: int = 12,
                      n_photos: int = len(PHOTOS), overwrite: bool = False) -> dict[str, Path]:
    """Write the local suite under ``out_dir`` (one folder per dataset); returns slug -> folder.

    Idempotent: an existing build with the same version and sizes is reused unless ``overwrite``.
    """
    root = Path(out_dir)
    manifest = root / "suite.json"
    params = {"version": SUITE_VERSION, "n_images": n_images, "n_vqa_queries": n_vqa_queries, "n_docs": n_docs,
              "n_photos": n_photos}
    slugs = list(LOCAL_REGISTRY)
    if not overwrite and manifest.is_file():
        try:
            if json.loads(manifest.read_text()).get("params") == params and all((root / s).is_dir() for s in slugs):
                return {s: root / s for s in slugs}
        except json.JSONDecodeError:
            pass
    for s in slugs:
        if (root / s).exists():
            shutil.rmtree(root / s)
    root.mkdir(parents=True, exist_ok=True)
    written = [*_document_datasets(root, n_docs), *_easyvqa_datasets(root, n_images, n_vqa_queries),
               *_photo_datasets(root, n_photos)]
    out = {p.name: p for p in written}
    manifest.write_text(json.dumps({"params": params, "datasets": sorted(out)}, indent=2))
    return {s: out[s] for s in slugs}
