"""Batches drawn from one modality combination at a time (deterministic per seed and epoch)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np


class CombinationBatchSampler:
    """Yields lists of row indices; every batch holds rows of a single combination.

    Per epoch: each combination's rows are shuffled and cut into batches, then the order of all
    batches is shuffled, so combinations interleave across steps in proportion to their size.
    The same ``(seed, epoch)`` always gives the same batches.
    """

    def __init__(self, combinations: Sequence[str], batch_size: int, seed: int = 0, drop_last: bool = False,
                 shuffle: bool = True):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.combinations = list(combinations)
        self.batch_size = batch_size
        self.seed = seed
        self.drop_last = drop_last
        self.shuffle = shuffle
        self.epoch = 0
        self._groups: dict[str, list[int]] = {}
        for i, c in enumerate(self.combinations):
            self._groups.setdefault(c, []).append(i)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batches(self, epoch: int | None = None) -> list[list[int]]:
        e = self.epoch if epoch is None else epoch
        rng = np.random.default_rng([self.seed, e])
        out: list[list[int]] = []
        for c in sorted(self._groups):
            idx = np.asarray(self._groups[c])
            if self.shuffle:
                idx = rng.permutation(idx)
            for s in range(0, len(idx), self.batch_size):
                b = idx[s:s + self.batch_size].tolist()
                if len(b) < self.batch_size and self.drop_last:
                    continue
                out.append(b)
        if self.shuffle:
            order = rng.permutation(len(out))
            out = [out[i] for i in order]
        return out

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches())

    def __len__(self) -> int:
        n = 0
        for idx in self._groups.values():
            n += len(idx) // self.batch_size if self.drop_last else -(-len(idx) // self.batch_size)
        return n
