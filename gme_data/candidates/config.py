"""``CandidatesConfig``: thresholds and options of the candidates stage."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ConfigDict, Field

from gme_data.candidates.domains import DOMAIN_PROMPTS
from gme_data.errors import InvalidInputError
from gme_data.stage_config import StageConfig


class CandidatesConfig(StageConfig):
    """Options of :func:`gme_data.candidates.build_candidates`.

    ``domains``: a subset of domain names (unknown names get a generic prompt) or a
    ``{name: [prompts]}`` mapping (None = GME's 15). ``model_path``: the sentence-transformers model
    of the classifier (None = the bundled all-MiniLM-L6-v2).
    """

    model_config = ConfigDict(frozen=True)

    threshold: float = Field(default=0.5, description="Keep paragraphs whose domain confidence >= this (GME: 0.5)")
    temperature: float = Field(default=0.02, description="Softmax temperature over cosine similarities "
                                                         "(smaller = more confident)")
    phash_distance: int = Field(default=6, description="Images within this pHash Hamming distance (of 64 bits) "
                                                       "of an earlier image are duplicates")
    max_per_domain: int | None = Field(default=None, description="Cap per domain for balance (None = no cap)")
    balance_ratio: float | None = Field(default=None, description="Cap = ratio x smallest domain count "
                                                                  "(None = off)")
    domains: Sequence[str] | Mapping[str, Sequence[str]] | None = None
    model_path: str | None = None
    dedup_text: bool = Field(default=True, description="Drop exact duplicate texts")
    dedup_images: bool = Field(default=True, description="Drop near-duplicate images")
    show_progress: bool = True

    def model_post_init(self, _context: Any) -> None:
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
