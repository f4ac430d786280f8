"""DataLoader construction: a dataset mapped through the input pipeline, seeded and batched."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, default_collate, get_worker_info

__all__ = ["PipelineDataset", "collate_samples", "make_loader"]


class PipelineDataset(Dataset):
    """``dataset[i]`` passed through ``pipeline(sample, generator)``.

    The generator is per process: seeded from ``seed`` in the main process and re-seeded in
    each worker from the worker's torch seed (which the DataLoader derives from its own
    seeded generator), so a loader with a fixed seed yields the same batches every run.
    """

    def __init__(self, dataset: Dataset, pipeline: Callable | None, seed: int = 0) -> None:
        self.dataset = dataset
        self.pipeline = pipeline
        self.generator = torch.Generator().manual_seed(int(seed))

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        sample = self.dataset[index]
        if self.pipeline is None:
            return sample
        return self.pipeline(sample, self.generator)


def _seed_worker(worker_id: int) -> None:
    info = get_worker_info()
    seed = torch.initial_seed()  # base_seed + worker_id, set by the DataLoader
    np.random.seed(seed % 2**32)
    if info is not None and isinstance(info.dataset, PipelineDataset):
        info.dataset.generator = torch.Generator().manual_seed(seed)


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


def make_loader(dataset: Dataset, pipeline: Callable | None = None, batch_size: int = 32,
                shuffle: bool = True, num_workers: int = 0, seed: int = 0,
                drop_last: bool = False, *, pin_memory: bool = False) -> DataLoader:
    """A reproducible DataLoader over ``pipeline(dataset[i])``.

    Args:
        dataset: a map-style dataset returning contract samples.
        pipeline: e.g. a :class:`~handdgp_models.data.HandInputPipeline`; None batches the
            raw samples (they must then be equally shaped).
        batch_size, shuffle, drop_last: as in :class:`torch.utils.data.DataLoader`.
        num_workers: worker processes; workers persist across epochs when > 0.
        seed: seeds the shuffling order and every augmentation draw.

    Returns:
        A DataLoader yielding dicts of batched tensors (``collate_samples``).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(f"batch_size: must be a positive int, got {batch_size!r}")
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
        raise ValueError(f"num_workers: must be a non-negative int, got {num_workers!r}")
    generator = torch.Generator().manual_seed(int(seed))
    return DataLoader(
        PipelineDataset(dataset, pipeline, seed),
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        collate_fn=collate_samples,
        worker_init_fn=_seed_worker,
        generator=generator,
        drop_last=drop_last,
        persistent_workers=num_workers > 0,
        pin_memory=pin_memory,
    )
