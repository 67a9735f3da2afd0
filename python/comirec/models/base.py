"""The interface every model shares: ``interests(history, mask) -> (B, K, d)``.

Training, evaluation and serving only ever call :meth:`InterestModel.interests` and
:meth:`InterestModel.item_vectors`, so none of them branches on a model's name. Single-vector
models return K = 1. One item embedding table serves as the input embedding and as the output
(softmax / retrieval) weights, as in the authors' code.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from torch import nn

from . import check_size


def glorot_(t: torch.Tensor) -> torch.Tensor:
    """TF1's default variable initialiser (glorot uniform), which the authors' models rely on."""
    return nn.init.xavier_uniform_(t)


def dense(n_in: int, n_out: int, bias: bool = True) -> nn.Linear:
    """``tf.layers.dense``: glorot-uniform kernel, zero bias."""
    layer = nn.Linear(n_in, n_out, bias=bias)
    glorot_(layer.weight)
    if bias:
        nn.init.zeros_(layer.bias)
    return layer


class InterestModel(nn.Module):
    """Base class: an item table of ``n_items + 1`` rows (row 0 = padding) and ``K`` interests."""

    name: ClassVar[str] = ""
    #: False for models with nothing to learn by gradient (MostPopular): training skips the loop.
    trainable: ClassVar[bool] = True

    def __init__(self, n_items: int, dim: int, n_interests: int) -> None:
        super().__init__()
        #: (start, total) when this process trains on rows start.. of a global batch of ``total``
        #: rows (data-parallel training); models that draw random numbers per row draw the global
        #: batch's and take these rows (comirec.distributed).
        self.batch_rows: tuple[int, int] | None = None
        #: The factor on every training logit (interest . item); read by the training loss only,
        #: as a positive factor changes no ranking. 1 (the authors') but for ComiRec-SA's option.
        self.logit_scale = 1.0
        self.n_items = check_size("n_items", n_items)
        self.dim = check_size("dim", dim)
        self.n_interests = check_size("interests", n_interests)
        self.item_emb = nn.Embedding(self.n_items + 1, self.dim)
        glorot_(self.item_emb.weight)

    def embed_history(self, history: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, T) ids and (B, T) float mask -> (B, T, d) embeddings, zero on padded positions."""
        emb: torch.Tensor = self.item_emb(history)
        return emb * mask.unsqueeze(-1)

    def interests(self, history: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, T) int64 item ids (0 = padding), (B, T) float mask -> (B, K, d) interest vectors."""
        if history.ndim != 2 or history.shape != mask.shape:
            raise ValueError(f"history and mask must both be (B, T), got {tuple(history.shape)} and {tuple(mask.shape)}")
        return self.encode(self.embed_history(history, mask), mask)

    def encode(self, his: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, T, d) history embeddings, already zero on padding, and the (B, T) mask -> (B, K, d).

        Split from :meth:`interests` so that training can fetch history, target and negative rows
        of the item table in one gather (one scatter in the backward pass)."""
        raise NotImplementedError

    def fit_sequences(self, indptr: np.ndarray, items: np.ndarray, users: np.ndarray) -> InterestModel:
        """A model that is not ``trainable`` is fitted here instead, from the given users' CSR
        sequences (MostPopular counts them); a trainable one learns by gradient steps."""
        raise TypeError(f"model {self.name} is trained by gradient steps, not fitted from sequences")

    def forward(self, history: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.interests(history, mask)

    def item_vectors(self) -> torch.Tensor:
        """(n_items, d): the retrieval vectors of items 1..n_items (never the padding row)."""
        return self.item_emb.weight[1:]


ALIGNS = ("left", "right")


def check_align(align: str) -> None:
    if align not in ALIGNS:
        raise ValueError(f"align must be one of {', '.join(ALIGNS)}, got {align!r}")


def right_align(his: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Move each left-aligned (B, T, d) history so that its most recent item is at position T-1.

    The sampler builds windows oldest first from position 0 (the authors' layout); models whose
    parameters depend on the position (per-position maps, positional embeddings) then see the
    most recent item at position len-1, which varies with the history length. Right alignment
    gives position T-1 to the most recent item for every history."""
    B, T = mask.shape
    lengths = mask.sum(1).long()
    shift = (T - lengths).unsqueeze(1)  # (B, 1)
    positions = torch.arange(T, device=mask.device).unsqueeze(0)
    src = (positions - shift) % T  # (B, T): padded columns wrap round to the (zero) padding
    his_r = torch.gather(his, 1, src.unsqueeze(-1).expand(B, T, his.shape[-1]))
    return his_r, (positions >= shift).to(mask.dtype)


def select_interest(interests: torch.Tensor, target_vec: torch.Tensor) -> torch.Tensor:
    """Eq. 8 (hard readout): per row, the interest with the largest inner product with the target.

    The gradient flows into the chosen interest only, as with the authors' ``tf.gather``.
    """
    if interests.shape[1] == 1:
        return interests[:, 0]
    idx = torch.einsum("bkd,bd->bk", interests, target_vec).argmax(dim=1)
    return interests[torch.arange(interests.shape[0], device=interests.device), idx]
