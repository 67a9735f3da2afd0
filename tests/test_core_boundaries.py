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


def _isolated(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter: an abort there fails the test instead of killing pytest."""
    return subprocess.run(
        [sys.executable, "-c", "import numpy as np, comirec\nfrom comirec import _core\n" + code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
    )


ONE = "(np.ones((1, 1, 1), np.int64), np.ones((1, 1, 1), np.float32))"
EMPTY = "(np.ones((0, 1, 1), np.int64), np.ones((0, 1, 1), np.float32))"
SAMPLER = "ip = np.array([0, 5, 11], np.int64); it = np.arange(11, dtype=np.int32); tb = np.array([0, 5, 0, 5, 11, 1], np.int64)\n"


@pytest.mark.parametrize(
    ("call", "exc", "arg"),
    [
        # the (B, n) output cannot be had: MemoryError naming n, before any work (issue 9, item 1)
        (f"comirec.aggregate({ONE}, None, 0, 10**12)", "MemoryError", "n"),
        (f"comirec.aggregate({ONE}, np.zeros(2, np.int64), 0.5, 10**12)", "MemoryError", "n"),
        ("comirec.aggregate((np.ones((1000, 1, 1), np.int64), np.ones((1000, 1, 1), np.float32)), None, 0, 10**9)",
         "MemoryError", "n"),
        # beyond what numpy can describe, even for an empty batch
        (f"comirec.aggregate({ONE}, None, 0, 2**62)", "ValueError", "n"),
        (f"comirec.aggregate({EMPTY}, None, 0, 2**62)", "ValueError", "n"),
        # metrics: a per-user table of B x len(ks) x 3 values
        ("comirec.metrics(np.ones((10**6, 1), np.int64), (np.arange(10**6 + 1), np.ones(10**6, np.int64)), ks=[1] * 10**5)",
         "MemoryError", "ks"),
        # the sampler's batches (the facade bounds batch_size * maxlen; the core checks too)
        (SAMPLER + "_core.sampler_train_batch(it, tb, 2**40, 20, 1, 0, 0, True)", "MemoryError", "batch_size"),
        (SAMPLER + "_core.sampler_train_batch(it, tb, 2, 2**40, 1, 0, 0, True)", "MemoryError", "batch_size"),
        (SAMPLER + "_core.sampler_eval_batch(ip, it, np.array([0, 1]), 2**40)", "MemoryError", "maxlen"),
        (SAMPLER + "_core.sampler_eval_batch(ip, it, np.zeros(0, np.int64), 2**62)", "ValueError", "maxlen"),
    ],
)
def test_sizes_that_cannot_be_allocated_raise_naming_the_argument(call: str, exc: str, arg: str) -> None:
    code = f"try:\n    {call.replace(chr(10), chr(10) + '    ')}\nexcept {exc} as e:\n    print('RAISED', e)\n"
    proc = _isolated(code)
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr[-2000:]}"
    assert proc.stdout.startswith(f"RAISED {arg}: "), proc.stdout + proc.stderr


def test_a_large_n_with_few_candidates_needs_no_scratch_of_size_n() -> None:
    # the output is (1, 3_000_000); the greedy's scratch stays sized by the K·N = 2 candidates
    items, scores = np.array([[[4, 2]]]), np.array([[[0.5, 0.25]]], np.float32)
    out = comirec.aggregate((items, scores), np.array([0, 0, 1, 0, 2]), 0.5, n=3_000_000)
    assert out.items.shape == (1, 3_000_000)
    assert out.items[0, :2].tolist() == [4, 2] and (out.items[0, 2:] == -1).all()
    assert np.isneginf(out.scores[0, 2:]).all()


def test_a_caught_panic_prints_nothing_even_with_rust_backtrace() -> None:
    code = "try:\n    _core._panic_for_test()\nexcept RuntimeError as e:\n    print(str(e))\n"
    for setting in ("0", "1", "full"):
        proc = _isolated(code, RUST_BACKTRACE=setting)
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr == "", f"RUST_BACKTRACE={setting} printed: {proc.stderr[:2000]}"
        assert proc.stdout.startswith("internal error in comirec's core (please report it): deliberate panic")
        assert "(at " in proc.stdout  # where it happened: in the message
        if setting != "0":
            assert "Rust backtrace:" in proc.stdout  # and the backtrace too, only there
