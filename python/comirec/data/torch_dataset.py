"""A torch ``IterableDataset`` over a :class:`TrainSampler` (imports torch; load it lazily)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import IterableDataset, get_worker_info

from .sampler import EvalBatch, TrainBatch, TrainSampler, background


def as_tensors(batch: Any) -> Any:
    """A TrainBatch / EvalBatch of numpy arrays as the same NamedTuple of tensors (no copy)."""
    return type(batch)(*(torch.from_numpy(a) for a in batch))


class SamplerDataset(IterableDataset):  # type: ignore[type-arg]
    """Batches ``start, start+1, ...`` (to ``stop``, or endless) of ``sampler`` as tensors.

    Already batched: use ``DataLoader(ds, batch_size=None)``, or iterate it directly. With
    ``prefetch > 0`` a background thread keeps that many batches ready (the Rust sampler releases
    the GIL, so it overlaps the training step). Under a DataLoader with several workers, worker
    ``w`` of ``n`` yields steps ``start + w, start + w + n, ...``: the same batches as one process,
    in an interleaved order.
    """

    def __init__(self, sampler: TrainSampler, start: int = 0, stop: int | None = None, prefetch: int = 2) -> None:
        super().__init__()
        if not isinstance(sampler, TrainSampler):
            raise TypeError(f"sampler: expected a TrainSampler, got {type(sampler).__name__}")
        if start < 0 or (stop is not None and stop < start):
            raise ValueError(f"start/stop: expected 0 <= start <= stop, got {start}, {stop}")
        if prefetch < 0:
            raise ValueError(f"prefetch: expected >= 0, got {prefetch}")
        self.sampler, self.start, self.stop, self.prefetch = sampler, start, stop, prefetch

    def _steps(self) -> Iterator[int]:
        info = get_worker_info()
        first, stride = (self.start, 1) if info is None else (self.start + info.id, info.num_workers)
        if self.stop is None:
            return itertools.count(first, stride)
        return iter(range(first, self.stop, stride))

    def __iter__(self) -> Iterator[TrainBatch]:
        batches = (as_tensors(self.sampler.batch(s)) for s in self._steps())
        return background(batches, self.prefetch) if self.prefetch else batches

    def __len__(self) -> int:
        if self.stop is None:
            raise TypeError("an endless SamplerDataset has no length (pass stop=...)")
        return self.stop - self.start


__all__ = ["SamplerDataset", "as_tensors", "EvalBatch", "TrainBatch"]
