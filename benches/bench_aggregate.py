"""comirec.aggregate (Rust) vs the best vectorised numpy merge (λ = 0) vs reference.py.

Inputs (``_inputs.py``): B users x K = 4 interests x N = 50 candidates, rows sorted by score (as
retrieval returns them), a 1,000,001-entry category table with 1,000 categories, n = 50, in two
shapes: ``uniform`` (categories uniformly random: every candidate its own category) and
``clustered`` (each interest retrieves mostly one category, as real retrieval does: the greedy
must look much deeper into the lists). Every contender of a group gets the same inputs; the
Python reference is timed on the first ``REF_USERS`` users only (its cost per user is flat) and
every result is checked against the Rust core. ``--benchmark-enable`` times them at full size.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from _inputs import make_candidates, make_clustered_candidates

import comirec
from comirec import reference

SIZES = [10_000, 100_000]
TOP_N = 50
INF = math.inf
SHAPES = {"uniform": make_candidates, "clustered": make_clustered_candidates}
# (shape, λ): the cases (uniform, λ = 0 and 0.1), λ = inf, and the clustered lists
CASES = [("uniform", 0.0), ("uniform", 0.1), ("uniform", INF), ("clustered", 0.0), ("clustered", 0.1), ("clustered", INF)]
# the Python reference on a prefix of the batch: ~2 ms per user at λ = 0, ~5-10 ms at λ > 0
REF_USERS = {0.0: 10_000, 0.1: 1_000, INF: 1_000}


def _id(p: Any) -> str:
    return f"{p[1]}-B={p[0]}" if isinstance(p, tuple) else f"lam={p}"


@pytest.fixture(scope="module")
def cands(request: pytest.FixtureRequest, scale: float) -> tuple[int, str, Any]:
    nominal, shape = request.param
    return nominal, shape, SHAPES[shape](max(1, int(nominal * scale)))


def params(lams: list[float] | None = None) -> Any:
    """(inputs, λ) for every size and case (λ = 0 only with `lams=[0.0]`), grouped by inputs."""
    chosen = [(b, shape, lam) for b in SIZES for shape, lam in CASES if lams is None or lam in lams]
    return pytest.mark.parametrize(
        ("cands", "lam"), [((b, s), lam) for b, s, lam in chosen], indirect=["cands"], ids=_id
    )


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


def label(benchmark: Any, shape: str, nominal: int, users: int, lam: float, who: str) -> None:
    # the Rust contender in its own group: a saved baseline compares it alone (benches/README.md)
    benchmark.group = ("rust: " if who == "rust" else "") + f"aggregate {shape} lam={lam} B={nominal}"
    benchmark.extra_info.update(users=users, lam=lam, contender=who)


@params()
def test_rust(benchmark: Any, timed: Any, cands: tuple[int, str, Any], lam: float) -> None:
    nominal, shape, (items, scores, cats) = cands
    label(benchmark, shape, nominal, items.shape[0], lam, "rust")
    out = timed(comirec.aggregate, (items, scores), cats, lam, TOP_N)
    few = slice(0, 30)
    want = reference.aggregate((items[few], scores[few]), cats, lam, TOP_N)
    np.testing.assert_array_equal(out.items[few], want.items)
    np.testing.assert_array_equal(out.scores[few], want.scores)


@params([0.0])
def test_numpy(benchmark: Any, timed: Any, cands: tuple[int, str, Any], lam: float) -> None:
    nominal, shape, (items, scores, cats) = cands
    label(benchmark, shape, nominal, items.shape[0], 0.0, "numpy")
    out = timed(numpy_merge, items, scores, TOP_N, rounds=3)
    want = comirec.aggregate((items, scores), cats, 0.0, TOP_N)
    np.testing.assert_array_equal(out.items, want.items)
    np.testing.assert_array_equal(out.scores, want.scores)


@params()
def test_reference(benchmark: Any, timed: Any, cands: tuple[int, str, Any], lam: float, scale: float) -> None:
    nominal, shape, (items, scores, cats) = cands
    part = slice(0, min(items.shape[0], max(10, int(REF_USERS[lam] * scale))))
    items, scores = items[part], scores[part]
    label(benchmark, shape, nominal, items.shape[0], lam, "reference.py")
    out = timed(reference.aggregate, (items, scores), cats, lam, TOP_N, rounds=1)
    want = comirec.aggregate((items, scores), cats, lam, TOP_N)
    np.testing.assert_array_equal(out.items, want.items)
    np.testing.assert_array_equal(out.scores, want.scores)
