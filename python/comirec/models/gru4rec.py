"""GRU4Rec (Hidasi et al., 2016) as the authors use it: a GRU over the history, state at the true length."""

from __future__ import annotations

import torch
from torch import nn

from .base import InterestModel, glorot_


class GRU4Rec(InterestModel):
    name = "gru4rec"

    def __init__(self, n_items: int, dim: int = 64, dropout: float = 0.0) -> None:
        super().__init__(n_items, dim, 1)
        # Dropout on the history's item embeddings before the GRU (training only), as GRU4Rec's
        # authors regularise its input; 0 (the default) is the model without it.
        self.drop = nn.Dropout(dropout)
        self.gru = nn.GRU(dim, dim, batch_first=True)
        # TF1 GRUCell: glorot kernels, gate biases 1.0 (start "open"), candidate bias 0.
        for name, p in self.gru.named_parameters():
            if name.startswith("weight"):
                for chunk in p.data.chunk(3, 0):
                    glorot_(chunk)
            else:
                nn.init.zeros_(p)
        bias_ih: torch.Tensor = self.gru.bias_ih_l0  # type: ignore[assignment]
        with torch.no_grad():
            bias_ih[: 2 * dim].fill_(1.0)

    def encode(self, his: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        out, _ = self.gru(self.drop(his))
        # Histories are left-aligned, so the output at position len-1 never saw padding: the same
        # state as a packed sequence, without packing. An empty history reads position 0.
        last = (mask.sum(1).long() - 1).clamp(min=0)
        state: torch.Tensor = out[torch.arange(out.shape[0], device=out.device), last]
        return state.unsqueeze(1)
