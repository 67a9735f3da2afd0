"""MostPopular: every user gets the items most frequent among the training users.

It fits the shared interface with d = 1: each item's vector is its popularity and every user's one
interest is the scalar 1, so inner-product retrieval returns the most popular items.
"""

from __future__ import annotations

import numpy as np
import torch

from .base import InterestModel


class MostPopular(InterestModel):
    name = "mostpop"
    trainable = False

    def __init__(self, n_items: int, dim: int = 1) -> None:
        # d is fixed at 1 whatever the config says (and K is 1): the model has no embedding to learn.
        super().__init__(n_items, 1, 1)
        self.item_emb.weight.requires_grad_(False)
        with torch.no_grad():
            self.item_emb.weight.zero_()

    def fit_counts(self, counts: np.ndarray) -> "MostPopular":
        """Set popularity from per-item counts, shape (n_items + 1,) indexed by item id."""
        counts = np.asarray(counts)
        if counts.shape != (self.n_items + 1,):
            raise ValueError(f"counts must have shape ({self.n_items + 1},) (one per item id, 0 = padding), got {counts.shape}")
        with torch.no_grad():
            w = torch.as_tensor(counts, dtype=torch.float32).reshape(-1, 1).clone()
            w[0] = 0.0
            self.item_emb.weight.copy_(w)
        return self

    def fit_sequences(self, indptr: np.ndarray, items: np.ndarray, users: np.ndarray) -> "MostPopular":
        """Count each item over the given users' sequences (the training users: no test leakage)."""
        indptr = np.asarray(indptr, dtype=np.int64)
        users = np.asarray(users, dtype=np.int64)
        lengths = indptr[users + 1] - indptr[users]
        # Positions of the selected users' events without a per-user loop: ranges via repeat + arange.
        starts = np.repeat(indptr[users], lengths)
        offsets = np.arange(lengths.sum(), dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        counts = np.bincount(np.asarray(items)[starts + offsets], minlength=self.n_items + 1)
        if counts.shape[0] > self.n_items + 1:
            raise ValueError(f"item ids exceed n_items={self.n_items}")
        return self.fit_counts(counts)

    def encode(self, his: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return torch.ones(mask.shape[0], 1, 1, device=mask.device, dtype=self.item_emb.weight.dtype)
