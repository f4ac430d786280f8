"""DataLoader construction: a dataset mapped through the input pipeline, seeded and batched."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate

__all__ = ["EpochSampler", "PipelineDataset", "collate_samples", "make_loader"]


class PipelineDataset(Dataset):
    """``pipeline(dataset[i], generator)`` with the generator seeded by ``(seed, epoch, i)``.

    Every augmentation draw is a pure function of the seed, the epoch (:meth:`set_epoch`)
    and the item index, so the data of a run does not depend on the number of workers, and
    a run resumed mid-epoch sees exactly the batches an uninterrupted one would.
    """

    def __init__(self, dataset: Dataset, pipeline: Callable | None, seed: int = 0) -> None:
        self.dataset = dataset
        self.pipeline = pipeline
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's augmentation draws (and the epoch of a mixed dataset)."""
        self.epoch = int(epoch)
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(self.epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        sample = self.dataset[index]
        if self.pipeline is None:
            return sample
        g = torch.Generator().manual_seed(hash((self.seed, self.epoch, int(index))) % 2**62)
        return self.pipeline(sample, g)


class EpochSampler(Sampler[int]):
    """Seeded per-epoch permutation, split across ranks, resumable at a position.

    Like :class:`torch.utils.data.DistributedSampler` (each rank takes every
    ``world``-th index of the permutation, truncated to equal length) plus ``start``: the
    number of this rank's indices already consumed in the epoch. ``shuffle=False`` keeps the
    dataset order.
    """

    def __init__(self, n: int, seed: int, rank: int = 0, world: int = 1,
                 shuffle: bool = True) -> None:
        self.n, self.seed, self.rank, self.world = n, seed, rank, world
        self.shuffle = shuffle
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = int(epoch), int(start)

    def _indices(self) -> list[int]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 100003 + self.epoch)
            perm = torch.randperm(self.n, generator=g).tolist()
        else:
            perm = list(range(self.n))
        per_rank = self.n // self.world
        return perm[self.rank::self.world][:per_rank]

    def __iter__(self):
        return iter(self._indices()[self.start:])

    def __len__(self) -> int:
        return self.n // self.world - self.start


def collate_samples(batch: Sequence[dict]) -> dict:
    """Stack a list of pipeline outputs (dicts, possibly nested) into batched tensors.

    Every item must have the same keys; strings become lists, ints a tensor.
    """
    if not batch:
        raise ValueError("batch: empty")
    keys = set(batch[0])
    for i, item in enumerate(batch):
        if set(item) != keys:
            raise ValueError(f"batch: item {i} has keys {sorted(item)} but item 0 has "
                             f"{sorted(keys)}; a dataset mixing samples with and without "
                             "masks or ground truth cannot be batched")
    return default_collate(list(batch))


def _seed_worker(worker_id: int) -> None:
    np.random.seed(torch.initial_seed() % 2**32)  # base_seed + worker_id, set by the loader


def make_loader(dataset: Dataset, pipeline: Callable | None = None, batch_size: int = 32,
                shuffle: bool = True, num_workers: int = 0, seed: int = 0,
                drop_last: bool = False, *, sampler: Sampler[int] | None = None,
                pin_memory: bool = False) -> DataLoader:
    """A reproducible DataLoader over ``pipeline(dataset[i])``: the one loader factory of
    training, evaluation and the benchmarks.

    Args:
        dataset: a map-style dataset returning contract samples.
        pipeline: e.g. an :class:`~handdgp_models.data.InputPipeline`; None batches the
            raw samples (they must then be equally shaped).
        batch_size, shuffle, drop_last: as in :class:`torch.utils.data.DataLoader`.
        num_workers: worker processes (started anew each epoch, so that
            ``loader.dataset.set_epoch(e)`` reaches them).
        seed: seeds the shuffling order and every augmentation draw; the draws of item ``i``
            depend only on ``(seed, epoch, i)``.
        sampler: the item order instead of ``shuffle`` (e.g. an :class:`EpochSampler`, which
            resumes mid-epoch and splits the data across processes).
        pin_memory: as in :class:`torch.utils.data.DataLoader` (for CUDA training).

    Returns:
        A DataLoader yielding dicts of batched tensors (``collate_samples``); its ``dataset``
        is the :class:`PipelineDataset`.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(f"batch_size: must be a positive int, got {batch_size!r}")
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
        raise ValueError(f"num_workers: must be a non-negative int, got {num_workers!r}")
    if sampler is not None and shuffle:
        raise ValueError("shuffle: must be False when a sampler gives the order")
    # seeds the shuffle and the workers' base seed; a sampler keeps its own seeded order
    generator = torch.Generator().manual_seed(int(seed)) if sampler is None else None
    return DataLoader(
        PipelineDataset(dataset, pipeline, seed),
        batch_size=batch_size,
        shuffle=shuffle,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=collate_samples,
        worker_init_fn=_seed_worker,
        generator=generator,
        drop_last=drop_last,
        pin_memory=pin_memory,
    )
