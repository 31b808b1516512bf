"""Gradient caching (GradCache, Gao et al. 2021): contrastive batches larger than memory allows.

1. embed every chunk with ``no_grad`` (RNG state recorded per chunk);
2. compute the loss on the detached embeddings and its gradient w.r.t. each embedding;
3. re-run each chunk with grad (same RNG state, so dropout matches) and back-propagate
   ``sum(embedding * cached_grad)``; parameter gradients accumulate to exactly those of the full batch.

Peak activation memory is one chunk's, whatever the batch size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch


class RandState:
    """CPU (and CUDA, when present) RNG state captured now and restorable later."""

    def __init__(self) -> None:
        self.cpu = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None

    def restore(self) -> None:
        torch.set_rng_state(self.cpu)
        if self.cuda is not None:
            torch.cuda.set_rng_state_all(self.cuda)


def grad_cache_step(embed: Callable[[Any], torch.Tensor], query_chunks: Sequence[Any],
                    cand_chunks: Sequence[Any], loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
                    ) -> torch.Tensor:
    """One GradCache forward/backward. ``embed(chunk) -> [n, d]`` must be differentiable when grad is
    enabled. Gradients are accumulated into the parameters (call ``optimizer.step`` after).
    Returns the (detached) loss."""
    states: list[RandState] = []
    reps: list[torch.Tensor] = []
    with torch.no_grad():
        for chunk in list(query_chunks) + list(cand_chunks):
            states.append(RandState())
            reps.append(embed(chunk).detach())
    nq = len(query_chunks)
    leaves = [r.float().requires_grad_(True) for r in reps]
    q = torch.cat(leaves[:nq]) if nq else torch.zeros(0)
    c = torch.cat(leaves[nq:])
    loss = loss_fn(q, c)
    grads = torch.autograd.grad(loss, leaves)
    chunks = list(query_chunks) + list(cand_chunks)
    for chunk, state, g in zip(chunks, states, grads, strict=True):
        after = RandState()
        state.restore()
        rep = embed(chunk)
        surrogate = torch.dot(rep.float().flatten(), g.to(rep.device).flatten())
        surrogate.backward()
        after.restore()
    return loss.detach()


def chunked(seq: Sequence[Any], size: int) -> list[Sequence[Any]]:
    """``seq`` cut into consecutive chunks of at most ``size``."""
    size = max(1, int(size))
    return [seq[i:i + size] for i in range(0, len(seq), size)]
