"""Shared inputs of the benchmarks.

``pytest benches`` runs each benchmark once as a test (``--benchmark-disable`` is in addopts)
on inputs scaled down 100x, so CI stays quick; ``--benchmark-enable`` times them at full size
(B = 10,000 and 100,000 users). ``COMIREC_BENCH_SCALE`` overrides the scale factor.
"""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def scale(request: pytest.FixtureRequest) -> float:
    if "COMIREC_BENCH_SCALE" in os.environ:
        return float(os.environ["COMIREC_BENCH_SCALE"])
    cfg = request.config
    timed = cfg.getoption("benchmark_enable") or not cfg.getoption("benchmark_disable")
    return 1.0 if timed else 0.01
