"""YouTube DNN (Covington et al., 2016) as the authors use it: masked mean pool, then a dense layer."""

from __future__ import annotations

import torch

from .base import InterestModel, dense


class YouTubeDNN(InterestModel):
    name = "youtube-dnn"

    def __init__(self, n_items: int, dim: int = 64) -> None:
        super().__init__(n_items, dim, 1)
        self.proj = dense(dim, dim)

    def encode(self, his: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        mean = his.sum(1) / (mask.sum(1, keepdim=True) + 1e-9)
        out: torch.Tensor = self.proj(mean)
        return out.unsqueeze(1)
