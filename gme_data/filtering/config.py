"""Configuration of ``fused_queries`` and ``filtered_samples``: pydantic stage configs with documented defaults.

Image-text scores come from whatever embedder built the pool, and each model has its own scale
(CLIP's 0.2 is GME's published cut; the offline bridge embedder scores lower), so the threshold is a
dict keyed by embedder name with a ``"default"`` entry; :func:`resolve_threshold` picks the entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from gme_data.errors import InvalidInputError
from gme_data.stage_config import StageConfig

#: Image-text score thresholds by embedder name; ``"default"`` applies to unlisted embedders.
#: 0.2 is GME's CLIP-score cut. CLIP-family embedders are named ``clip:<model>`` / ``siglip:<model>``
#: (:mod:`gme_data.retrieval.clip_family`), so the prefix keys give each family its default: CLIP 0.2;
#: SigLIP 0.1, an unmeasured placeholder (the assets use a loaded SigLIP's own sigmoid 50% point,
#: ``-bias / scale``, instead; see ``ClipFamilyEmbedder.image_score_threshold``).
DEFAULT_IMAGE_SCORE_THRESHOLDS: dict[str, float] = {"default": 0.2, "clip:": 0.2, "siglip:": 0.1}

IMAGE_RULES = ("top1", "top1_above_threshold", "prefer_source_image")
FILTERS = ("image_score", "consistency", "dedup", "rules")


def resolve_threshold(thresholds: Mapping[str, float] | float | None, embedder_name: str | None) -> float | None:
    """The threshold for ``embedder_name``: an exact key, else a key equal to the name's last path part
    (``"org/model"`` matches ``"model"``), else a key that is a prefix of the name, else ``"default"``;
    None when nothing applies (no filtering)."""
    if thresholds is None or isinstance(thresholds, (int, float)):
        return None if thresholds is None else float(thresholds)
    name = str(embedder_name or "")
    if name in thresholds:
        return float(thresholds[name])
    base = name.rstrip("/").rsplit("/", 1)[-1]
    for key, value in thresholds.items():
        if key != "default" and key.rstrip("/").rsplit("/", 1)[-1] == base:
            return float(value)
    prefixes = [k for k in thresholds if k != "default" and name.startswith(k)]
    if prefixes:
        return float(thresholds[max(prefixes, key=len)])
    return float(thresholds["default"]) if "default" in thresholds else None


def _check_thresholds(name: str, value: Any) -> None:
    if value is None or isinstance(value, (int, float)):
        return
    if not isinstance(value, Mapping) or not all(isinstance(v, (int, float)) for v in value.values()):
        raise InvalidInputError(f"{name} must be a number or a dict of embedder name -> number, got {value!r}")


class FusedConfig(StageConfig):
    """How ``fused_queries`` attaches an entity image to each rewritten query.

    - ``top_k`` (5): pool images retrieved per entity text; all are recorded (ids + scores).
    - ``rule`` ("top1"): which retrieved image becomes the query image:
      ``"top1"`` the best one; ``"top1_above_threshold"`` the best one if its score passes the
      embedder's image-score threshold, else the query is dropped (``no_image_above_threshold``);
      ``"prefer_source_image"`` the candidate paragraph's own image when it is among the top-k, else top1.
    - ``image_score_thresholds``: per-embedder thresholds for ``top1_above_threshold``.
    - ``query_template`` ("{entity}"): the text sent to the pool; fields ``{entity}`` and ``{title}``
      (the paragraph title).
    - ``instruction``: query instruction for the pool search and the T->I image score; None = GME's
      T->I default.
    - ``fused_styles`` (("fused",)): generated_queries styles that are fused (need an image); rows with
      ``query_modality == "fused"`` count as fused too.
    - ``emit_it_it`` (True): also emit IT->IT (positive = paragraph text + its own image) when the
      paragraph has an image distinct from the query image.
    - ``pass_through`` (True): emit non-fused styles as their own combinations (t2t -> T->T,
      t2i -> T->I) so ``filtered_samples`` sees every combination.
    """

    top_k: int = Field(default=5, description="Pool images retrieved per entity (all recorded in lineage)")
    rule: str = Field(default="top1", description="'top1', 'top1_above_threshold' or 'prefer_source_image'")
    image_score_thresholds: dict[str, float] | float | None = Field(
        default_factory=lambda: dict(DEFAULT_IMAGE_SCORE_THRESHOLDS))
    query_template: str = Field(default="{entity}", description="Text sent to the pool ({entity}, {title})")
    instruction: str | None = None
    fused_styles: tuple[str, ...] = ("fused",)
    emit_it_it: bool = Field(default=True, description="Also emit IT->IT samples when the paragraph has an image")
    pass_through: bool = True

    def model_post_init(self, _context: Any) -> None:
        if self.top_k < 1:
            raise InvalidInputError(f"fused config: top_k must be a positive int, got {self.top_k!r}")
        if self.rule not in IMAGE_RULES:
            raise InvalidInputError(f"fused config: rule={self.rule!r}; choose one of {IMAGE_RULES}")
        _check_thresholds("fused config: image_score_thresholds", self.image_score_thresholds)
        try:
            self.query_template.format(entity="x", title="y")
        except (KeyError, IndexError, ValueError) as exc:
            raise InvalidInputError(f"fused config: query_template {self.query_template!r} may use only "
                                    f"{{entity}} and {{title}} ({exc})") from exc


class FilterConfig(StageConfig):
    """GME's filters for ``filtered_samples``, applied in ``order`` (default: as listed here).

    1. ``image_score``: samples with an image-text score below the embedder's threshold
       (``image_score_thresholds``, default 0.2) are dropped (reason ``image_score_below_threshold``).
    2. ``consistency``: a text retriever (``consistency_model``: a sentence-transformers name or path;
       None = the bundled all-MiniLM-L6-v2) ranks all candidate texts for the query; the positive
       must be in the top ``consistency_top_k`` (20) (reason ``consistency_rank_above_k``). Fused
       queries are checked with their original query (the one naming the entity) when
       ``fused_consistency_query="original"`` (default), as a text retriever cannot see the image;
       ``"rewritten"`` uses the generic rewritten query. ``consistency_combinations``: which
       combinations are checked (None = all whose positive has text).
    3. ``dedup``: exact duplicate (query, positive) pairs (``duplicate_pair``), then near duplicates
       for the same positive (``near_duplicate``): query text cosine >= ``dedup_text_threshold``
       (0.95, with the text retriever) and query images within ``dedup_phash_max_distance`` (4 bits
       of a 64-bit pHash); a part missing on both sides counts as equal, on one side as different.
       The first sample (input order) of a duplicate group is kept.
    4. ``rules``: ``answer_leak`` (the answer, >= ``answer_leak_min_chars`` chars, appears verbatim as
       whole words, case-insensitive, in the query), ``entity_leak`` (a fused query that still names its
       entity; ``drop_entity_leak``), ``query_too_short`` / ``query_too_long`` (``min_query_chars`` 8 /
       ``max_query_chars`` 512).

    ``instructions``: per-combination query instructions overriding
    :data:`gme_data.retrieval.instructions.DEFAULT_INSTRUCTIONS`. ``gallery_size``: kept samples listed
    in the report for the UI (12; samples with a query image first).
    """

    image_score_thresholds: dict[str, float] | float | None = Field(
        default_factory=lambda: dict(DEFAULT_IMAGE_SCORE_THRESHOLDS))
    consistency_model: str | None = Field(default=None, description="sentence-transformers model for the "
                                          "consistency filter; None = bundled all-MiniLM-L6-v2")
    consistency_top_k: int = Field(default=20, description="The positive must rank in the text retriever's top k")
    consistency_combinations: tuple[str, ...] | None = None
    fused_consistency_query: str = "original"
    dedup_text_threshold: float = Field(default=0.95, description="Query cosine at/above which samples are "
                                                                  "duplicates")
    dedup_phash_max_distance: int = Field(default=4, description="Query images within this pHash distance are "
                                                                 "equal")
    min_query_chars: int = Field(default=8, description="Shorter queries are dropped (query_too_short)")
    max_query_chars: int = Field(default=512, description="Longer queries are dropped (query_too_long)")
    answer_leak_min_chars: int = 2
    drop_entity_leak: bool = True
    order: tuple[str, ...] = FILTERS
    instructions: dict[str, str] = Field(default_factory=dict)
    text_batch_size: int = 64
    gallery_size: int = 12

    def model_post_init(self, _context: Any) -> None:
        _check_thresholds("filter config: image_score_thresholds", self.image_score_thresholds)
        if self.consistency_top_k < 1:
            raise InvalidInputError(f"filter config: consistency_top_k must be >= 1, got {self.consistency_top_k}")
        if self.fused_consistency_query not in ("original", "rewritten"):
            raise InvalidInputError("filter config: fused_consistency_query must be 'original' or 'rewritten', "
                                    f"got {self.fused_consistency_query!r}")
        if not 0.0 < self.dedup_text_threshold <= 1.0:
            raise InvalidInputError(f"filter config: dedup_text_threshold must be in (0, 1], "
                                    f"got {self.dedup_text_threshold}")
        if not 0 <= self.dedup_phash_max_distance <= 64:
            raise InvalidInputError("filter config: dedup_phash_max_distance must be in [0, 64], "
                                    f"got {self.dedup_phash_max_distance}")
        if self.min_query_chars < 0 or self.max_query_chars < max(1, self.min_query_chars):
            raise InvalidInputError(f"filter config: need 0 <= min_query_chars ({self.min_query_chars}) <= "
                                    f"max_query_chars ({self.max_query_chars})")
        bad = [f for f in self.order if f not in FILTERS]
        if bad or len(set(self.order)) != len(self.order):
            raise InvalidInputError(f"filter config: order={self.order!r}; use each of {FILTERS} at most once")
