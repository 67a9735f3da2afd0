"""The native boundary: stubs match the module, panics stay inside, forks do not deadlock,
``import comirec`` stays light."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

import comirec
from comirec import _core


def test_stubs_match_the_native_module() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "comirec._core"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_rust_panic_arrives_as_runtime_error() -> None:
    with pytest.raises(RuntimeError, match="internal error in comirec's core"):
        _core._panic_for_test()


def test_import_is_light() -> None:
    code = "import sys, comirec; heavy = {'torch', 'faiss', 'pyarrow', 'ranx', 'pandas'} & set(sys.modules); print(sorted(heavy))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"


def _batch(b: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    items = rng.integers(1, 2000, size=(b, 4, 20))
    scores = -np.sort(-rng.random((b, 4, 20), dtype=np.float32), axis=2)
    cats = rng.integers(0, 30, size=2000)
    return items, scores, cats


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX-only")
def test_forked_child_does_not_deadlock() -> None:
    items, scores, cats = _batch(4000)  # large enough for the parallel path
    targets = (np.arange(4001, dtype=np.int64), items[:, 0, 0].copy())
    # The parent starts rayon's pool, then forks (as torch DataLoader workers do).
    want = comirec.aggregate((items, scores), cats, 0.1, n=30)
    want_m = comirec.metrics(want.items, targets, cats, ks=(10, 30))
    assert not _core._forked_from_pool_owner()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # Python >= 3.12 warns on fork with threads
        pid = os.fork()
    if pid == 0:  # child: must finish (serially), with the same results
        code = 1
        try:
            got = comirec.aggregate((items, scores), cats, 0.1, n=30)
            got_m = comirec.metrics(got.items, targets, cats, ks=(10, 30))
            same = np.array_equal(got.items, want.items) and got_m == want_m
            code = 0 if same and _core._forked_from_pool_owner() else 3
        finally:
            os._exit(code)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0, "the forked child computed different results"
            break
        time.sleep(0.05)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("the forked child deadlocked in the native core")
    # and the parent's pool still works
    again = comirec.aggregate((items, scores), cats, 0.1, n=30)
    np.testing.assert_array_equal(again.items, want.items)
