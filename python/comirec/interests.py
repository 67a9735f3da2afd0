"""The recommendation step shared by evaluation and serving: a model's K interests per history,
and the item index they are searched in (λ and N are checked by :mod:`comirec.core`, their owner).

    interests = compute_interests(model, history, mask)      # (b, K, d)
    cands = build_index(model).search(interests, n)          # top-n per interest (retrieval)
    recs = comirec.aggregate(cands, item_cat, lam=lam, n=n)  # K x n -> n (the Rust core)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .retrieval import ItemIndex

if TYPE_CHECKING:
    import torch

    from .device import Device
    from .models.base import InterestModel


def compute_interests(model: InterestModel, history: np.ndarray, mask: np.ndarray, device: Device = "cpu") -> torch.Tensor:
    """(b, K, d) interests of a batch, in eval mode and without gradients (a torch tensor)."""
    import torch

    with torch.inference_mode():
        h = torch.from_numpy(np.ascontiguousarray(history, dtype=np.int64)).to(device)
        m = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32)).to(device)
        return model.interests(h, m).float()


def build_index(model: InterestModel, device: Device = "cpu", factory: str = "Flat", nprobe: int = 16,
                ef_search: int | None = None) -> ItemIndex:
    import torch

    with torch.no_grad():
        vectors = model.item_vectors().detach().float()
    return ItemIndex(vectors, factory=factory, device=str(device), nprobe=nprobe, ef_search=ef_search)
