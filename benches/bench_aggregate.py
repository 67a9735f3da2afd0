"""comirec.aggregate (Rust) vs the best vectorised numpy merge (λ = 0) vs reference.py.

Same inputs for every contender in a group: B users x K = 4 interests x N = 50 candidates, sorted
rows (as retrieval returns them), a 1,000,001-entry category table, n = 50. Each benchmark also
checks its result against the Rust core. ``--benchmark-enable`` times them at full size; the
reference greedy at B = 100,000 (about 7 minutes) runs only with COMIREC_BENCH_SLOW=1.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest
from _inputs import make_candidates

import comirec
from comirec import reference

SIZES = [10_000, 100_000]
TOP_N = 50


@pytest.fixture(scope="module", params=SIZES, ids=lambda b: f"B={b}")
def cands(request: pytest.FixtureRequest, scale: float) -> tuple[int, Any]:
    return request.param, make_candidates(max(1, int(request.param * scale)))


def numpy_merge(items: np.ndarray, scores: np.ndarray, n: int) -> comirec.Candidates:
    """λ = 0 with numpy only: f = the best score per (user, item), then the n best by (f desc,
    id asc). Exact, including ties and empty slots."""
    b = items.shape[0]
    it = items.reshape(b, -1)
    sc = scores.reshape(b, -1)
    order = np.lexsort((-sc, it), axis=1)  # by item, best score first
    it = np.take_along_axis(it, order, axis=1)
    sc = np.take_along_axis(sc, order, axis=1)
    first = np.ones(it.shape, dtype=bool)
    first[:, 1:] = it[:, 1:] != it[:, :-1]
    sc = np.where(first & (it >= 0), sc, -np.inf)
    top = np.lexsort((it, -sc), axis=1)[:, :n]
    out_items = np.take_along_axis(it, top, axis=1).astype(np.int64)
    out_scores = np.take_along_axis(sc, top, axis=1)
    out_items[np.isneginf(out_scores)] = -1
    if out_items.shape[1] < n:  # fewer slots than n
        pad = n - out_items.shape[1]
        out_items = np.pad(out_items, ((0, 0), (0, pad)), constant_values=-1)
        out_scores = np.pad(out_scores, ((0, 0), (0, pad)), constant_values=-np.inf)
    return comirec.Candidates(out_items, out_scores)


def label(benchmark: Any, nominal: int, users: int, lam: float, who: str) -> None:
    benchmark.group = f"aggregate lam={lam} B={nominal}"
    benchmark.extra_info.update(users=users, lam=lam, contender=who)


@pytest.mark.parametrize("lam", [0.0, 0.1])
def test_rust(benchmark: Any, cands: tuple[int, Any], lam: float) -> None:
    nominal, (items, scores, cats) = cands
    label(benchmark, nominal, items.shape[0], lam, "rust")
    out = benchmark(comirec.aggregate, (items, scores), cats, lam, TOP_N)
    few = slice(0, 30)
    want = reference.aggregate((items[few], scores[few]), cats, lam, TOP_N)
    np.testing.assert_array_equal(out.items[few], want.items)
    np.testing.assert_array_equal(out.scores[few], want.scores)


def test_numpy(benchmark: Any, cands: tuple[int, Any]) -> None:
    nominal, (items, scores, cats) = cands
    label(benchmark, nominal, items.shape[0], 0.0, "numpy")
    out = benchmark.pedantic(numpy_merge, args=(items, scores, TOP_N), rounds=3, iterations=1)
    want = comirec.aggregate((items, scores), cats, 0.0, TOP_N)
    np.testing.assert_array_equal(out.items, want.items)
    np.testing.assert_array_equal(out.scores, want.scores)


@pytest.mark.parametrize("lam", [0.0, 0.1])
def test_reference(benchmark: Any, cands: tuple[int, Any], lam: float, scale: float) -> None:
    nominal, (items, scores, cats) = cands
    if lam > 0 and items.shape[0] >= 100_000 and not os.environ.get("COMIREC_BENCH_SLOW"):
        pytest.skip("the Python greedy takes ~7 min at B=100,000; set COMIREC_BENCH_SLOW=1 to run it")
    label(benchmark, nominal, items.shape[0], lam, "reference.py")
    out = benchmark.pedantic(reference.aggregate, args=((items, scores), cats, lam, TOP_N), rounds=1, iterations=1)
    want = comirec.aggregate((items, scores), cats, lam, TOP_N)
    np.testing.assert_array_equal(out.items, want.items)
