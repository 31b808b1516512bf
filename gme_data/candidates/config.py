"""``CandidatesConfig``: thresholds and options of the candidates stage."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gme_data.candidates.domains import DOMAIN_PROMPTS
from gme_data.errors import InvalidInputError


@dataclass(frozen=True)
class CandidatesConfig:
    """Options of :func:`gme_data.candidates.build_candidates`.

    ``threshold``: minimum domain confidence to keep (GME uses 0.5). ``temperature``: softmax temperature
    over cosine similarities (smaller = more confident). ``phash_distance``: images within this many
    bits (of 64) of an earlier image are near-duplicates. ``max_per_domain`` / ``balance_ratio``: cap each
    domain at a count and/or at ``balance_ratio`` x the smallest domain. ``domains``: a subset of
    domain names (unknown names get a generic prompt) or a ``{name: [prompts]}`` mapping.
    """

    threshold: float = 0.5
    temperature: float = 0.02
    phash_distance: int = 6
    max_per_domain: int | None = None
    balance_ratio: float | None = None
    domains: Sequence[str] | Mapping[str, Sequence[str]] | None = None
    model_path: str | None = None
    dedup_text: bool = True
    dedup_images: bool = True
    show_progress: bool = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise InvalidInputError(f"candidates config: threshold must be in [0, 1], got {self.threshold}")
        if self.temperature <= 0:
            raise InvalidInputError(f"candidates config: temperature must be > 0, got {self.temperature}")
        if not 0 <= self.phash_distance <= 64:
            raise InvalidInputError(f"candidates config: phash_distance must be in [0, 64], got {self.phash_distance}")
        if self.max_per_domain is not None and self.max_per_domain < 1:
            raise InvalidInputError(f"candidates config: max_per_domain must be >= 1, got {self.max_per_domain}")
        if self.balance_ratio is not None and self.balance_ratio < 1:
            raise InvalidInputError(f"candidates config: balance_ratio must be >= 1, got {self.balance_ratio}")

    def domain_prompts(self) -> dict[str, tuple[str, ...]]:
        """The domains to classify into, each with its label prompts."""
        if self.domains is None:
            return dict(DOMAIN_PROMPTS)
        if isinstance(self.domains, Mapping):
            prompts = {str(k): tuple(v) for k, v in self.domains.items()}
        else:
            prompts = {d: DOMAIN_PROMPTS.get(d, (f"a paragraph about {d.replace('_', ' ')}",)) for d in self.domains}
        if len(prompts) < 2 or any(not p for p in prompts.values()):
            raise InvalidInputError("candidates config: domains needs at least two domains, each with a prompt")
        return prompts
