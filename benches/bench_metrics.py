"""comirec.metrics (Rust) vs reference.py vs ranx's evaluate.

Inputs: B users, n = 50 distinct ranked recommendations, 1-50 CSR targets each (~20% drawn from
the recommendations); Recall/NDCG/HitRate at k = 20 and 50 (what ranx computes too), and the
same with Diversity (needs the 1,000,001-entry category table; ranx has no such metric). ranx is
timed on prebuilt Qrels/Run objects (their construction is not timed); building them for
B = 100,000 takes ~10 minutes, so that size runs only with COMIREC_BENCH_SLOW=1.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np
import pytest
from _inputs import make_rankings

import comirec
from comirec import reference

SIZES = [10_000, 100_000]
KS = (20, 50)


@pytest.fixture(scope="module", params=SIZES, ids=lambda b: f"B={b}")
def rankings(request: pytest.FixtureRequest, scale: float) -> tuple[int, Any]:
    return request.param, make_rankings(max(1, int(request.param * scale)))


def label(benchmark: Any, nominal: int, users: int, what: str, who: str) -> None:
    benchmark.group = ("rust: " if who == "rust" else "") + f"metrics {what} B={nominal}"
    benchmark.extra_info.update(users=users, contender=who)


@pytest.mark.parametrize("with_cats", [False, True], ids=["recall-ndcg-hitrate", "with-diversity"])
def test_rust(benchmark: Any, timed: Any, rankings: tuple[int, Any], with_cats: bool) -> None:
    nominal, (recs, indptr, targets, cats) = rankings
    c = cats if with_cats else None
    label(benchmark, nominal, recs.shape[0], "with-diversity" if with_cats else "recall-ndcg-hitrate", "rust")
    got = timed(comirec.metrics, recs, (indptr, targets), c, KS)
    few = slice(0, 200)
    want = reference.metrics(recs[few], (indptr[:201], targets[: indptr[min(200, recs.shape[0])]]), c, KS)
    if recs.shape[0] <= 200:
        for key in want:
            assert got[key] == pytest.approx(want[key], rel=1e-12)
    assert set(got) == set(want)


@pytest.mark.parametrize("with_cats", [False, True], ids=["recall-ndcg-hitrate", "with-diversity"])
def test_reference(benchmark: Any, timed: Any, rankings: tuple[int, Any], with_cats: bool) -> None:
    nominal, (recs, indptr, targets, cats) = rankings
    c = cats if with_cats else None
    label(benchmark, nominal, recs.shape[0], "with-diversity" if with_cats else "recall-ndcg-hitrate", "reference.py")
    got = timed(reference.metrics, recs, (indptr, targets), c, KS, rounds=1)
    want = comirec.metrics(recs, (indptr, targets), c, KS)
    for key in want:
        assert got[key] == pytest.approx(want[key], rel=1e-9)


def test_ranx(benchmark: Any, timed: Any, rankings: tuple[int, Any]) -> None:
    nominal, (recs, indptr, targets, _cats) = rankings
    if recs.shape[0] >= 100_000 and not os.environ.get("COMIREC_BENCH_SLOW"):
        pytest.skip("building ranx Qrels/Run for B=100,000 takes ~10 min; set COMIREC_BENCH_SLOW=1 to run it")
    with warnings.catch_warnings():  # numba type-safety warnings while ranx compiles
        warnings.simplefilter("ignore")
        from ranx import Qrels, Run, evaluate

        t, r, ip = targets.tolist(), recs.tolist(), indptr.tolist()
        qrels = Qrels({f"q{u:07d}": {str(i): 1 for i in t[ip[u] : ip[u + 1]]} for u in range(len(r))})
        run = Run({f"q{u:07d}": {str(i): float(len(row) - k) for k, i in enumerate(row)} for u, row in enumerate(r)})
        names = [f"{m}@{k}" for k in KS for m in ("recall", "ndcg", "hit_rate")]
        evaluate(qrels, run, names)  # compile outside the timing
        label(benchmark, nominal, recs.shape[0], "recall-ndcg-hitrate", "ranx")
        got = timed(evaluate, qrels, run, names)
    want = comirec.metrics(recs, (indptr, targets), None, KS)
    for k in KS:
        assert got[f"recall@{k}"] == pytest.approx(want[f"recall@{k}"], rel=1e-9)
        assert got[f"ndcg@{k}"] == pytest.approx(want[f"ndcg@{k}"], rel=1e-9)
        assert got[f"hit_rate@{k}"] == pytest.approx(want[f"hitrate@{k}"], rel=1e-9)
