"""``comirec demo``: generated multi-interest candidates through :func:`comirec.aggregate` and
:func:`comirec.metrics`, one row per λ: accuracy falls and category diversity rises with λ
(the trade-off of the paper's Table 5), with the core's throughput.

The data are synthetic: each interest draws 70% of its candidates from one category, scores are
sorted Gumbel noise, and each user's targets are sampled from their candidates with a probability
that grows with the score. Nothing here is a result about real data.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .config import DemoConfig


def generate(cfg: DemoConfig) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32], npt.NDArray[np.int64], tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]]:
    """(items (B,K,N), scores (B,K,N), cats (items+1,), CSR targets)."""
    for name in ("users", "interests", "per_interest", "items", "categories", "n"):
        if getattr(cfg, name) <= 0:
            raise ValueError(f"{name}: expected a positive integer, got {getattr(cfg, name)}")
    rng = np.random.default_rng(cfg.seed)
    b, k, n = cfg.users, cfg.interests, cfg.per_interest
    cats = rng.integers(0, cfg.categories, size=cfg.items + 1)
    cats[0] = -1  # padding id
    by_cat = np.argsort(cats[1:], kind="stable") + 1  # item ids grouped by category
    bounds = np.searchsorted(cats[by_cat], np.arange(cfg.categories + 1))
    focus = rng.integers(0, cfg.categories, size=(b, k, 1))
    lo, hi = bounds[focus], bounds[focus + 1]
    in_focus = by_cat[np.minimum(lo + (rng.random((b, k, n)) * (hi - lo)).astype(np.int64), by_cat.size - 1)]
    anywhere = rng.integers(1, cfg.items + 1, size=(b, k, n))
    items = np.where((rng.random((b, k, n)) < 0.7) & (hi > lo), in_focus, anywhere)
    scores = -np.sort(-rng.gumbel(size=(b, k, n)).astype(np.float32), axis=2)
    # targets: candidates kept with probability rising with their score, at least one per user
    keep = rng.random((b, k, n)) < 0.12 / (1.0 + np.exp(-2.0 * (scores - 1.0)))
    keep[np.arange(b), rng.integers(0, k, size=b), rng.integers(0, n, size=b)] = True
    users, slots = np.nonzero(keep.reshape(b, -1))
    indptr = np.zeros(b + 1, dtype=np.int64)
    np.cumsum(np.bincount(users, minlength=b), out=indptr[1:])
    return items, scores, cats, (indptr, items.reshape(b, -1)[users, slots])


