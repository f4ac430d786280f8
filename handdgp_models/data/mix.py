"""A training mix of several datasets with sampling weights, re-drawn every epoch."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from torch.utils.data import Dataset

__all__ = ["MixedDataset"]


class MixedDataset(Dataset):
    """Items of several datasets in proportions given by ``weights``.

    An epoch has ``len(self)`` items (the sum of the datasets' lengths); source ``k``
    contributes ``round(len(self) · w_k / Σw)`` of them (the rounding remainder goes to the
    largest weights), drawn without replacement from a permutation of that source seeded by
    ``(seed, epoch, k)`` and cycled when the source is smaller than its share. The item
    table of an epoch is a pure function of ``(seed, epoch)``, so resumed runs and DataLoader
    workers agree.

    Args:
        datasets: map-style datasets returning samples of the same contract.
        weights: positive sampling weights, one per dataset.
        seed: seeds the draws.
    """

    def __init__(self, datasets: Sequence[Dataset], weights: Sequence[float],
                 seed: int = 0) -> None:
        if not datasets:
            raise ValueError("datasets: need at least one dataset")
        if len(weights) != len(datasets):
            raise ValueError(f"weights: expected {len(datasets)} values, got {len(weights)}")
        w = np.asarray(weights, dtype=np.float64)
        if not np.all(np.isfinite(w)) or np.any(w <= 0):
            raise ValueError(f"weights: must be positive and finite, got {list(weights)}")
        sizes = [len(d) for d in datasets]
        if any(n == 0 for n in sizes):
            raise ValueError(f"datasets: source {sizes.index(0)} is empty")
        self.datasets = list(datasets)
        self.sizes = sizes
        self.seed = int(seed)
        total = sum(sizes)
        share = w / w.sum() * total
        counts = np.floor(share).astype(np.int64)
        for k in np.argsort(-(share - counts), kind="stable")[: total - int(counts.sum())]:
            counts[k] += 1
        self.counts = [int(c) for c in counts]
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Draw the item table of ``epoch``."""
        self.epoch = int(epoch)
        table = []
        for k, (n, c) in enumerate(zip(self.sizes, self.counts, strict=True)):
            rng = np.random.default_rng([self.seed, self.epoch, k])
            reps = -(-c // n)
            idx = np.concatenate([rng.permutation(n) for _ in range(reps)])[:c]
            table.append(np.stack([np.full(c, k), idx], axis=1))
        self.table = np.concatenate(table) if table else np.zeros((0, 2), dtype=np.int64)

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, index: int) -> dict:
        k, i = self.table[index]
        return self.datasets[int(k)][int(i)]
