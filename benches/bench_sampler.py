"""Training-batch sampling: the Rust sampler vs a plain-Python iterator written like the authors'
DataIterator (random.sample of users, random.choice of the cut, list slicing).

Taobao scale: a CSR of 1M users and 85M events, maxlen 50, batch 256 (SPEC section 2). Timed on
request (``pytest benches/bench_sampler.py --benchmark-enable``); in CI (``--benchmark-disable``)
each bench runs once, on a CSR 100x smaller (benches/conftest.py), as a correctness test.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from comirec.data import TrainSampler
from _baselines import AuthorsStyleIterator

BATCH, MAXLEN = 256, 50
RUST_BATCHES, PY_BATCHES = 40, 4  # batches per timed round
RUST_ROUNDS, PY_ROUNDS = 150, 30


@pytest.fixture(scope="module")
def csr(scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Taobao size at scale 1 (timed runs), 100x smaller as a test (see conftest.py)."""
    n_users, n_events, n_items = int(1_000_000 * scale), int(85_000_000 * scale), int(1_700_000 * scale)
    rng = np.random.default_rng(0)
    # Long-tailed lengths (>= 5, mean 85) and Zipf-like item ids, as in Taobao.
    weights = rng.lognormal(0.0, 1.0, n_users)
    lengths = rng.multinomial(n_events - 5 * n_users, weights / weights.sum()) + 5
    indptr = np.zeros(n_users + 1, np.int64)
    np.cumsum(lengths, out=indptr[1:])
    items = np.empty(n_events, np.int32)
    step = 1 << 24
    for a in range(0, n_events, step):  # in chunks: bounded temporaries
        u = rng.random(min(step, n_events - a))
        items[a : a + step] = 1 + np.minimum((n_items * u**3).astype(np.int64), n_items - 1)
    return indptr, items


def _check(users, hist, mask, target, indptr, items):
    hist, mask = np.asarray(hist), np.asarray(mask)
    assert hist.shape == (BATCH, MAXLEN) and mask.shape == (BATCH, MAXLEN)
    assert len(set(np.asarray(users).tolist())) == BATCH  # distinct users, as random.sample
    for r in range(0, BATCH, 37):  # spot-check the protocol
        u = int(users[r])
        seq = items[indptr[u] : indptr[u + 1]]
        n = int(mask[r].sum())
        assert (hist[r, n:] == 0).all() and n <= min(len(seq) - 1, MAXLEN)
        if n < MAXLEN:  # a short history is the prefix, and the target comes right after it
            assert hist[r, :n].tolist() == seq[:n].tolist() and int(target[r]) == int(seq[n])


def test_sampler_rust(benchmark, csr):
    indptr, items = csr
    sampler = TrainSampler(indptr, items, batch_size=BATCH, maxlen=MAXLEN, min_hist=4, seed=0)
    steps = itertools.count()

    def run() -> object:
        for _ in range(RUST_BATCHES):
            b = sampler.batch(next(steps))
        return b

    benchmark.group = "rust: sampler"
    b = benchmark.pedantic(run, rounds=RUST_ROUNDS, warmup_rounds=3)
    _check(b.users, b.history, b.mask, b.target, indptr, items)
    benchmark.extra_info["samples_per_round"] = RUST_BATCHES * BATCH


def test_sampler_rust_torch_prefetch(benchmark, csr):
    pytest.importorskip("torch")
    indptr, items = csr
    sampler = TrainSampler(indptr, items, batch_size=BATCH, maxlen=MAXLEN, min_hist=4, seed=0)
    from comirec.data import SamplerDataset

    it = iter(SamplerDataset(sampler, prefetch=2))

    def run() -> object:
        for _ in range(RUST_BATCHES):
            b = next(it)
        return b

    benchmark.group = "rust: sampler"
    b = benchmark.pedantic(run, rounds=RUST_ROUNDS, warmup_rounds=3)
    _check(b.users.numpy(), b.history.numpy(), b.mask.numpy(), b.target.numpy(), indptr, items)
    benchmark.extra_info["samples_per_round"] = RUST_BATCHES * BATCH


def test_sampler_python_authors_style(benchmark, csr):
    indptr, items = csr
    # A dict of Python lists over all users, as DataIterator.read builds (at Taobao scale ~3 GB
    # of Python objects, as the authors' code holds).
    graph = {u: items[indptr[u] : indptr[u + 1]].tolist() for u in range(len(indptr) - 1)}
    it = AuthorsStyleIterator(graph, BATCH, MAXLEN, min_hist=4, seed=0)

    def run() -> object:
        for _ in range(PY_BATCHES):
            b = next(it)
        return b

    benchmark.group = "sampler"
    (users, targets), (hist, mask) = benchmark.pedantic(run, rounds=PY_ROUNDS, warmup_rounds=1)
    _check(users, hist, mask, targets, indptr, items)
    benchmark.extra_info["samples_per_round"] = PY_BATCHES * BATCH
