"""ComiRec-SA: K-head self-attention over the history (eqs. 5-7)."""

from __future__ import annotations

import torch
from torch import nn

from . import check_logit_scale, check_size
from .base import InterestModel, check_align, dense, glorot_, right_align

# The authors' mask value: large and finite, so an all-padding row gives a uniform (not NaN) softmax.
_MASKED = -(2.0**32) + 1.0


class ComiRecSA(InterestModel):
    """A = softmax(W2^T tanh(W1 (H + P))) over positions; V = H A. d_a = 4d.

    The learnable positional embedding P enters the attention input only: the interests are
    weighted sums of the plain item embeddings.
    """

    name = "comirec-sa"

    def __init__(self, n_items: int, dim: int = 64, n_interests: int = 4, maxlen: int = 20, align: str = "left",
                 pos_init: str = "glorot", logit_scale: float = 1.0) -> None:
        super().__init__(n_items, dim, n_interests)
        check_align(align)
        self.maxlen = check_size("maxlen", maxlen)
        self.align = align
        if pos_init not in ("glorot", "zero"):
            raise ValueError(f"pos_init must be one of glorot, zero, got {pos_init!r}")
        # glorot (the authors'): at maxlen 20, d 64 about 12x the item table's glorot scale, so
        # the first steps' attention reads positions, not items; zero starts from the items.
        pos = torch.empty(self.maxlen, dim)
        self.pos_emb = nn.Parameter(glorot_(pos) if pos_init == "glorot" else nn.init.zeros_(pos))
        self.w1 = dense(dim, 4 * dim)
        self.w2 = dense(4 * dim, n_interests)
        self.logit_scale = check_logit_scale(logit_scale)  # InterestModel.logit_scale

    def encode(self, his: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        T = mask.shape[1]
        if T > self.maxlen:
            raise ValueError(f"history has {T} positions but the model was built with maxlen={self.maxlen}")
        if self.align == "right":
            his, mask = right_align(his, mask)
        # Right-aligned windows index the positional embedding from the end (most recent = maxlen-1).
        x = his + (self.pos_emb[self.maxlen - T :] if self.align == "right" else self.pos_emb[:T])
        real = mask.bool()
        if bool(real.all()):
            scores = self.w2(torch.tanh(self.w1(x)))  # (B, T, K)
        else:
            # The attention MLP (d -> 4d -> K) is most of the cost: run it on real positions only
            # (histories are left-aligned and often short); padded ones get the mask value.
            scores = x.new_full((*mask.shape, self.n_interests), _MASKED)
            scores = scores.index_put((real,), self.w2(torch.tanh(self.w1(x[real]))))
        att = torch.softmax(scores, dim=1)  # over positions
        return torch.einsum("btk,btd->bkd", att, his)
