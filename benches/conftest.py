"""Shared fixtures of the benchmarks.

``pytest benches`` runs each benchmark once as a test (``--benchmark-disable`` is in addopts)
on inputs scaled down 100x, so CI stays quick; ``--benchmark-enable`` times them at full size
(B = 10,000 and 100,000 users). ``COMIREC_BENCH_SCALE`` overrides the scale factor.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture
def timed(benchmark: Any) -> Callable[..., Any]:
    """``timed(f, *args, rounds=None)``: ``benchmark(f, *args)`` (or ``benchmark.pedantic`` with
    that many rounds) that also records in ``extra_info`` the median process CPU time per call
    (all threads: the work done, less sensitive than wall time to other load on the machine) and
    the 1-minute load average before and after, for ``report.py``."""

    def run(f: Callable[..., Any], *args: Any, rounds: int | None = None) -> Any:
        cpu: list[float] = []

        def call(*a: Any) -> Any:
            c0 = time.process_time()
            out = f(*a)
            cpu.append(time.process_time() - c0)
            return out

        benchmark.extra_info["load_before"] = os.getloadavg()[0]
        if rounds is None:
            out = benchmark(call, *args)
        else:
            out = benchmark.pedantic(call, args=args, rounds=rounds, iterations=1)
        benchmark.extra_info["load_after"] = os.getloadavg()[0]
        benchmark.extra_info["cpu_s"] = statistics.median(cpu)
        return out

    return run


@pytest.fixture(scope="session")
def scale(request: pytest.FixtureRequest) -> float:
    if "COMIREC_BENCH_SCALE" in os.environ:
        return float(os.environ["COMIREC_BENCH_SCALE"])
    cfg = request.config
    timed = cfg.getoption("benchmark_enable") or not cfg.getoption("benchmark_disable")
    return 1.0 if timed else 0.01
