"""Inputs of the benchmarks (shared by bench_aggregate.py and bench_metrics.py)."""

from __future__ import annotations

import numpy as np

N_ITEMS = 1_000_000  # catalogue size: the category table has N_ITEMS + 1 entries (id 0 = padding)
N_CATS = 1_000
K, N = 4, 50  # interests, candidates per interest


def make_candidates(users: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-interest top-N lists as retrieval returns them: int64 ids, float32 scores sorted
    descending per row; half the slots come from 5,000 popular items, so interests overlap."""
    rng = np.random.default_rng(seed)
    popular = rng.integers(1, N_ITEMS + 1, size=5_000)
    uniform = rng.integers(1, N_ITEMS + 1, size=(users, K, N))
    items = np.where(rng.random((users, K, N)) < 0.5, popular[rng.integers(0, 5_000, size=(users, K, N))], uniform)
    scores = -np.sort(-rng.standard_normal((users, K, N), dtype=np.float32), axis=2) + 2.0
    cats = rng.integers(0, N_CATS, size=N_ITEMS + 1).astype(np.int32)
    cats[0] = -1
    return items, scores, cats


def make_rankings(users: int, n: int = 50, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Ranked distinct recommendations (users, n) and CSR targets, 1-50 per user, about 20% of
    them drawn from the user's recommendations (so there are hits)."""
    rng = np.random.default_rng(seed)
    recs = rng.integers(1, N_ITEMS + 1, size=(users, n))
    while True:  # redraw the few rows with a repeated id
        s = np.sort(recs, axis=1)
        bad = (s[:, 1:] == s[:, :-1]).any(axis=1)
        if not bad.any():
            break
        recs[bad] = rng.integers(1, N_ITEMS + 1, size=(int(bad.sum()), n))
    lens = rng.integers(1, 51, size=users)
    indptr = np.zeros(users + 1, dtype=np.int64)
    np.cumsum(lens, out=indptr[1:])
    targets = rng.integers(1, N_ITEMS + 1, size=int(indptr[-1]))
    owner = np.repeat(np.arange(users), lens)
    hit = rng.random(targets.size) < 0.2
    targets[hit] = recs[owner[hit], rng.integers(0, n, size=int(hit.sum()))]
    cats = rng.integers(0, N_CATS, size=N_ITEMS + 1).astype(np.int32)
    cats[0] = -1
    return recs, indptr, targets, cats
