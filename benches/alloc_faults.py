"""Minor page faults and median wall time of `comirec.aggregate` on the benchmark's uniform
B = 100,000 inputs (what `rust/src/buffer.rs` changes). Not a pytest benchmark: run it with two
builds installed in two environments, alternately, to compare them.

    python benches/alloc_faults.py
"""

import resource
import sys
import time
from pathlib import Path

import numpy as np

import comirec

sys.path.insert(0, str(Path(__file__).parent))
from _inputs import make_candidates  # noqa: E402


def main(users: int = 100_000, calls: int = 15) -> None:
    items, scores, cats = make_candidates(users)
    for lam in (0.0, 0.1):
        times, faults = [], []
        for _ in range(calls):
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            t = time.perf_counter()
            out = comirec.aggregate((items, scores), cats, lam, n=50)
            times.append(time.perf_counter() - t)
            faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
            del out
        print(f"lam={lam}: median {1e3 * np.median(times):.1f} ms, {np.median(faults):.0f} minor faults a call")


if __name__ == "__main__":
    main()
