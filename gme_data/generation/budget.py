"""A hard spending cap for one run: dollars and/or tokens, reserved before each request.

Before a request goes out, :meth:`Budget.reserve` books its worst case (estimated prompt tokens +
``max_tokens`` at the configured prices). A request whose worst case does not fit next to what is
spent and what is booked by requests still in flight is not sent: :class:`BudgetExceeded` is
raised and the budget is closed, so no later request is sent either. When an answer arrives its
booking is replaced by the usage the server reported (:meth:`Budget.settle`); a failed request
gives its booking back (:meth:`Budget.release`). With ``concurrency`` requests in flight, the spend
can only pass the cap by what the server reports beyond the reservations (zero when the prompt
estimate is an upper bound), i.e. by less than one reserved request per slot.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from gme_data.generation.errors import GenerationError


class BudgetExceeded(GenerationError):
    """The next request would pass the run's budget; nothing more is sent."""


@dataclass(frozen=True)
class Reservation:
    tokens: int
    usd: float


@dataclass
class Budget:
    """Caps (0 = none) and running totals; thread-safe."""

    max_usd: float = 0.0
    max_tokens: int = 0
    price_prompt_per_1k: float = 0.0
    price_completion_per_1k: float = 0.0
    spent_usd: float = 0.0
    spent_tokens: int = 0
    reserved_usd: float = 0.0
    reserved_tokens: int = 0
    largest_reservation_usd: float = 0.0
    closed: str = ""
    #: How the dollar cap is named in messages (a run-wide cap names itself here).
    cap_name: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def limited(self) -> bool:
        return self.max_usd > 0 or self.max_tokens > 0

    def price(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens / 1000 * self.price_prompt_per_1k
                + completion_tokens / 1000 * self.price_completion_per_1k)

    def reserve(self, prompt_tokens: int, max_completion_tokens: int) -> Reservation:
        """Book a request's worst case or raise :class:`BudgetExceeded` (and close the budget)."""
        res = Reservation(prompt_tokens + max_completion_tokens, self.price(prompt_tokens, max_completion_tokens))
        with self._lock:
            if self.closed:
                raise BudgetExceeded(self.closed)
            over = []
            if self.max_usd > 0 and self.spent_usd + self.reserved_usd + res.usd > self.max_usd + 1e-12:
                over.append(self.cap_name or f"max_budget_usd={self.max_usd:g}")
            if self.max_tokens > 0 and self.spent_tokens + self.reserved_tokens + res.tokens > self.max_tokens:
                over.append(f"max_budget_tokens={self.max_tokens}")
            if over:
                self.closed = (f"{' and '.join(over)} reached: the next request needs up to ${res.usd:.6f} / "
                               f"{res.tokens} tokens")
                raise BudgetExceeded(self.closed)
            self.reserved_usd += res.usd
            self.reserved_tokens += res.tokens
            self.largest_reservation_usd = max(self.largest_reservation_usd, res.usd)
        return res

    def settle(self, res: Reservation, prompt_tokens: int, completion_tokens: int) -> None:
        """Replace a booking by the usage the server reported."""
        with self._lock:
            self.reserved_usd -= res.usd
            self.reserved_tokens -= res.tokens
            self.spent_usd += self.price(prompt_tokens, completion_tokens)
            self.spent_tokens += prompt_tokens + completion_tokens

    def release(self, res: Reservation) -> None:
        """Give back the booking of a request that got no answer."""
        with self._lock:
            self.reserved_usd -= res.usd
            self.reserved_tokens -= res.tokens
