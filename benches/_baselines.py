"""The baselines the benchmarks compare comirec with, written as the authors' code is (not part of
the package: nothing in it serves users)."""

from __future__ import annotations


class AuthorsStyleIterator:
    """A plain-Python training iterator written like the authors' ``DataIterator`` (a dict of
    per-user lists, ``random.sample`` of users, ``random.choice`` of the cut): the baseline the
    sampler benchmark compares against. Not the same random stream as the Rust sampler."""

    def __init__(self, graph: dict[int, list[int]], batch_size: int, maxlen: int, min_hist: int = 4, seed: int = 0):
        import random

        self.graph = graph
        self.users = [u for u, seq in graph.items() if len(seq) > min_hist]
        self.batch_size, self.maxlen, self.min_hist = batch_size, maxlen, min_hist
        self.rng = random.Random(seed)

    def __iter__(self) -> AuthorsStyleIterator:
        return self

    def __next__(self) -> tuple[tuple[list[int], list[int]], tuple[list[list[int]], list[list[float]]]]:
        user_ids = self.rng.sample(self.users, self.batch_size)
        targets, hists, masks = [], [], []
        for u in user_ids:
            seq = self.graph[u]
            k = self.rng.choice(range(self.min_hist, len(seq)))
            targets.append(seq[k])
            if k >= self.maxlen:
                hists.append(seq[k - self.maxlen : k])
                masks.append([1.0] * self.maxlen)
            else:
                hists.append(seq[:k] + [0] * (self.maxlen - k))
                masks.append([1.0] * k + [0.0] * (self.maxlen - k))
        return (user_ids, targets), (hists, masks)
