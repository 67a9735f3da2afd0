"""The sampler's specification in plain Python (slow; for tests and for reading).

Same rules and the same random streams as ``rust/src/sampler.rs``, so the Rust sampler must
produce identical batches:

- SplitMix64; ``below(n)`` = (next_u64 * n) >> 64.
- Batch ``step`` has key ``mix64(mix64(seed ^ SALT) + step)``; its users come from the stream
  seeded with the key: without replacement, draw and redraw repeats while the batch is at most
  half of the eligible users, otherwise a partial Fisher-Yates shuffle; with replacement, plain
  draws.
- Row ``r``'s cut: ``k = min_hist + below(len - min_hist)`` from the stream seeded with
  ``key ^ mix64(r + 1)``; target ``items[k]``; history the last ``maxlen`` items before ``k``,
  left-aligned, zero-padded, mask 1.0 on real positions.
- Evaluation: ``k = floor(0.8 * len)``; history the last ``maxlen`` of ``items[:k]``; targets
  ``items[k:]``.
"""

from __future__ import annotations

from collections.abc import Sequence

M64 = (1 << 64) - 1
GOLDEN_GAMMA = 0x9E3779B97F4A7C15
SEED_SALT = 0x5851F42D4C957F2D


def mix64(z: int) -> int:
    z &= M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


class SplitMix64:
    def __init__(self, state: int) -> None:
        self.state = state & M64

    def next_u64(self) -> int:
        self.state = (self.state + GOLDEN_GAMMA) & M64
        return mix64(self.state)

    def below(self, n: int) -> int:
        return (self.next_u64() * n) >> 64


def batch_key(seed: int, step: int) -> int:
    return mix64((mix64(seed ^ SEED_SALT) + step) & M64)


def eligible_users(indptr: Sequence[int], users: Sequence[int], min_hist: int) -> list[int]:
    return [u for u in users if indptr[u + 1] - indptr[u] > min_hist]


def draw_positions(n: int, b: int, replacement: bool, rng: SplitMix64) -> list[int]:
    if replacement:
        return [rng.below(n) for _ in range(b)]
    if b > n:
        raise ValueError(f"batch_size: expected at most {n}, got {b}")
    if 2 * b <= n:
        out: list[int] = []
        seen: set[int] = set()
        while len(out) < b:
            p = rng.below(n)
            if p not in seen:
                seen.add(p)
                out.append(p)
        return out
    perm = list(range(n))
    for i in range(b):
        j = i + rng.below(n - i)
        perm[i], perm[j] = perm[j], perm[i]
    return perm[:b]


def train_batch(
    indptr: Sequence[int],
    items: Sequence[int],
    eligible: Sequence[int],
    batch_size: int,
    maxlen: int,
    min_hist: int,
    seed: int,
    step: int,
    replacement: bool = False,
) -> tuple[list[int], list[list[int]], list[list[float]], list[int]]:
    """(users, history rows, mask rows, targets) of batch ``step``."""
    key = batch_key(seed, step)
    positions = draw_positions(len(eligible), batch_size, replacement, SplitMix64(key))
    users = [eligible[p] for p in positions]
    history, mask, target = [], [], []
    for row, u in enumerate(users):
        seq = list(items[indptr[u] : indptr[u + 1]])
        k = min_hist + SplitMix64(key ^ mix64(row + 1)).below(len(seq) - min_hist)
        hist = seq[max(0, k - maxlen) : k]
        history.append(hist + [0] * (maxlen - len(hist)))
        mask.append([1.0] * len(hist) + [0.0] * (maxlen - len(hist)))
        target.append(seq[k])
    return users, history, mask, target


def eval_rows(
    indptr: Sequence[int], items: Sequence[int], users: Sequence[int], maxlen: int
) -> tuple[list[list[int]], list[list[float]], list[list[int]]]:
    """(history rows, mask rows, target lists) for ``users``."""
    history, mask, targets = [], [], []
    for u in users:
        seq = list(items[indptr[u] : indptr[u + 1]])
        k = int(len(seq) * 0.8)
        hist = seq[max(0, k - maxlen) : k]
        history.append(hist + [0] * (maxlen - len(hist)))
        mask.append([1.0] * len(hist) + [0.0] * (maxlen - len(hist)))
        targets.append(seq[k:])
    return history, mask, targets


def recent_rows(indptr: Sequence[int], items: Sequence[int], maxlen: int) -> tuple[list[list[int]], list[list[float]]]:
    """(history rows, mask rows) of every user for serving: the last ``maxlen`` items of the whole
    sequence (no evaluation cut)."""
    history, mask = [], []
    for u in range(len(indptr) - 1):
        seq = list(items[indptr[u] : indptr[u + 1]])
        hist = seq[max(0, len(seq) - maxlen) :]
        history.append(hist + [0] * (maxlen - len(hist)))
        mask.append([1.0] * len(hist) + [0.0] * (maxlen - len(hist)))
    return history, mask
