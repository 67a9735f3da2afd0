"""Latency-regression guard that does not depend on the machine: in-process speed ratios.

Each case times the Rust core and its baseline on the same (scaled-down) inputs in one process,
single-threaded on both sides (RAYON_NUM_THREADS=1, NUMBA_NUM_THREADS=1), by process CPU time:
a ratio of two CPU times moves little with the machine or with other load, where absolute
times move a lot. Rounds alternate the two contenders; a round's ratio is (baseline CPU s per
user) / (Rust CPU s per user), the Rust side taking the median of ``INNER`` calls; the case's
ratio is the median over rounds. A case fails when its ratio drops below half of ``DOCUMENTED``
(the figures of benches/README.md, "Regression guard", measured with this script).

    python benches/ratio_guard.py            # prints the table; exit status 1 if a ratio fell below half
    COMIREC_TEST_SLOWDOWN=10 python benches/ratio_guard.py   # simulates a 10x slower Rust build: fails

``COMIREC_TEST_SLOWDOWN=F`` (read here only, never by comirec) makes every timed Rust call burn
(F - 1) times its own CPU time afterwards, so the guard sees a core F times slower; the tests
use it to show that the guard trips (benches/test_ratio_guard.py).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # _inputs.py, bench_aggregate.py

# case -> the ratio measured on the development VM (benches/README.md, "Regression guard")
DOCUMENTED = {
    "aggregate lam=0 vs numpy merge": 24.0,
    "aggregate lam=0.1 vs reference greedy": 1500.0,
    "metrics vs ranx": 80.0,
    "sampler vs Python iterator": 8.0,  # 7.2-8.9x on a quiet VM, 16.5-20.5x under load
    "metrics vs reference": 60.0,  # runs instead of "metrics vs ranx" when ranx is not installed
}
# when its baseline cannot be imported, a case is replaced by another
FALLBACK = {"metrics vs ranx": "metrics vs reference"}
INNER = 5  # Rust calls per round (median taken)
SLOWDOWN_VAR = "COMIREC_TEST_SLOWDOWN"

# A case: (rust_fn, rust_users, baseline_fn, baseline_users), each fn taking no argument.
Case = tuple[Callable[[], Any], int, Callable[[], Any], int]


def slowed(fn: Callable[[], Any], factor: float) -> Callable[[], Any]:
    """``fn`` made ``factor`` times as costly in CPU time (busy work after each call)."""
    if factor <= 1.0:
        return fn

    def run() -> Any:
        c0 = time.process_time()
        out = fn()
        spent = time.process_time() - c0
        end = c0 + factor * spent
        x = 0
        while time.process_time() < end:
            x += 1
        return out

    return run


def _aggregate_lam0() -> Case:
    import comirec
    from _inputs import make_candidates
    from bench_aggregate import numpy_merge

    items, scores, cats = make_candidates(4_000)
    sub_i, sub_s = items[:1_000], scores[:1_000]
    return (lambda: comirec.aggregate((items, scores), cats, 0.0, 50), 4_000,
            lambda: numpy_merge(sub_i, sub_s, 50), 1_000)


def _aggregate_lam01() -> Case:
    import comirec
    from _inputs import make_candidates

    from comirec import reference

    items, scores, cats = make_candidates(4_000)
    sub_i, sub_s = items[:40], scores[:40]
    return (lambda: comirec.aggregate((items, scores), cats, 0.1, 50), 4_000,
            lambda: reference.aggregate((sub_i, sub_s), cats, 0.1, 50), 40)


KS = (20, 50)


def _rust_metrics() -> tuple[Callable[[], Any], int, Any]:
    import comirec
    from _inputs import make_rankings

    recs, indptr, targets, _cats = make_rankings(4_000)
    return lambda: comirec.metrics(recs, (indptr, targets), None, KS), 4_000, (recs, indptr, targets)


def _metrics_ranx() -> Case:
    with warnings.catch_warnings():  # numba's warnings while ranx imports and compiles
        warnings.simplefilter("ignore")
        from ranx import Qrels, Run, evaluate  # ImportError: FALLBACK

        rust, rust_users, (recs, indptr, targets) = _rust_metrics()
        users = 1_000
        t, r, ip = targets.tolist(), recs[:users].tolist(), indptr.tolist()
        qrels = Qrels({f"q{u:07d}": {str(i): 1 for i in t[ip[u] : ip[u + 1]]} for u in range(users)})
        run = Run({f"q{u:07d}": {str(i): float(len(row) - k) for k, i in enumerate(row)} for u, row in enumerate(r)})
        names = [f"{m}@{k}" for k in KS for m in ("recall", "ndcg", "hit_rate")]
        evaluate(qrels, run, names)  # compiled (or loaded from numba's cache) outside the timing

    def base() -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return evaluate(qrels, run, names)

    return rust, rust_users, base, users


def _metrics_reference() -> Case:
    from comirec import reference

    rust, rust_users, (recs, indptr, targets) = _rust_metrics()
    sub = (indptr[:501], targets[: indptr[500]])
    return rust, rust_users, lambda: reference.metrics(recs[:500], sub, None, KS), 500


def _sampler() -> Case:
    from comirec.data import TrainSampler
    from _baselines import AuthorsStyleIterator

    rng = np.random.default_rng(0)
    n_users, batch, maxlen = 20_000, 256, 50
    lengths = rng.integers(5, 165, size=n_users)
    indptr = np.zeros(n_users + 1, np.int64)
    np.cumsum(lengths, out=indptr[1:])
    items = (1 + (34_000 * rng.random(int(indptr[-1])) ** 3)).astype(np.int32)
    sampler = TrainSampler(indptr, items, batch_size=batch, maxlen=maxlen, min_hist=4, seed=0)
    graph = {u: items[indptr[u] : indptr[u + 1]].tolist() for u in range(n_users)}
    it = AuthorsStyleIterator(graph, batch, maxlen, min_hist=4, seed=0)
    steps = iter(range(10**9))

    def rust() -> Any:
        for _ in range(40):
            b = sampler.batch(next(steps))
        return b

    def python() -> Any:
        for _ in range(16):
            b = next(it)
        return b

    return rust, 40 * batch, python, 16 * batch


CASES: dict[str, Callable[[], Case]] = {
    "aggregate lam=0 vs numpy merge": _aggregate_lam0,
    "aggregate lam=0.1 vs reference greedy": _aggregate_lam01,
    "metrics vs ranx": _metrics_ranx,
    "sampler vs Python iterator": _sampler,
    "metrics vs reference": _metrics_reference,
}


def _cpu(fn: Callable[[], Any]) -> float:
    c0 = time.process_time()
    fn()
    return time.process_time() - c0


def measure(case: Case, rounds: int, factor: float) -> float:
    """The median over ``rounds`` of (baseline CPU s per user) / (Rust CPU s per user)."""
    rust, rust_users, base, base_users = case
    rust = slowed(rust, factor)
    rust()
    base()  # warm both (caches, lazy pages)
    ratios = []
    for _ in range(rounds):
        r = statistics.median(_cpu(rust) for _ in range(INNER)) / rust_users
        b = _cpu(base) / base_users
        ratios.append(b / max(r, 1e-12))
    return statistics.median(ratios)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5, help="rounds per case (default 5)")
    p.add_argument("--only", default="", help="comma-separated texts: run the cases whose name contains one of them")
    args = p.parse_args(argv)
    # Single-threaded contenders: set before comirec (rayon) or numba (ranx) start their pools.
    for var in ("RAYON_NUM_THREADS", "NUMBA_NUM_THREADS", "OMP_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    factor = float(os.environ.get(SLOWDOWN_VAR, "1") or 1)
    if factor != 1.0:
        print(f"{SLOWDOWN_VAR}={factor:g}: every Rust call made {factor:g}x as costly")
    failed = []
    print(f"{'case':<40} {'documented':>10} {'measured':>10} {'floor':>8}")
    fallbacks, measured = set(FALLBACK.values()), set()
    for name, build in CASES.items():
        if args.only and not any(part in name for part in args.only.split(",")):
            continue
        if name in measured or (name in fallbacks and not args.only):
            continue
        try:
            case = build()
        except ImportError as exc:
            print(f"{name}: {exc}; measuring {FALLBACK[name]!r} instead")
            name = FALLBACK[name]
            case = CASES[name]()
        measured.add(name)
        ratio = measure(case, args.rounds, factor)
        floor = DOCUMENTED[name] / 2
        verdict = "ok" if ratio >= floor else "BELOW HALF"
        print(f"{name:<40} {DOCUMENTED[name]:>9.0f}x {ratio:>9.1f}x {floor:>7.0f}x  {verdict}", flush=True)
        if ratio < floor:
            failed.append(name)
    if failed:
        print(f"latency regression: {', '.join(failed)}: the Rust core's speed ratio fell below half its documented value")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
