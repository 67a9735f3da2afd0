"""The Rust training/evaluation sampler against its pure-Python specification and SPEC section 2."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from comirec.data import EvalBatch, TrainBatch, TrainSampler, background, eval_batches, recent_windows
from comirec.reference import sampler as ref


def positional_csr(lengths: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """User u's j-th item is 1000 * u + j + 1, so an item tells its user and position."""
    indptr = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths, out=indptr[1:])
    items = np.concatenate([1000 * u + np.arange(n) + 1 for u, n in enumerate(lengths)] + [np.zeros(0)])
    return indptr, items.astype(np.int32)


def random_csr(rng: np.random.Generator, n_users: int, max_len: int, n_items: int = 50) -> tuple[np.ndarray, np.ndarray]:
    lengths = rng.integers(0, max_len + 1, n_users)
    indptr = np.zeros(n_users + 1, np.int64)
    np.cumsum(lengths, out=indptr[1:])
    return indptr, rng.integers(1, n_items + 1, int(indptr[-1])).astype(np.int32)


# ---- parity with the reference -----------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**64 - 1),
    step=st.integers(0, 2**64 - 1),
    data_seed=st.integers(0, 2**32 - 1),
    n_users=st.integers(1, 40),
    maxlen=st.integers(1, 12),
    min_hist=st.integers(1, 6),
    replacement=st.booleans(),
    frac=st.floats(0.05, 1.0),
)
def test_train_batch_matches_reference(seed, step, data_seed, n_users, maxlen, min_hist, replacement, frac):
    rng = np.random.default_rng(data_seed)
    indptr, items = random_csr(rng, n_users, 20)
    eligible = ref.eligible_users(indptr.tolist(), list(range(n_users)), min_hist)
    if not eligible:
        with pytest.raises(ValueError, match="min_hist"):
            TrainSampler(indptr, items, batch_size=1, min_hist=min_hist)
        return
    # Both draw regimes: rejection (batch <= half the users) and partial Fisher-Yates.
    batch_size = max(1, int(frac * len(eligible))) if not replacement else int(rng.integers(1, 30))
    sampler = TrainSampler(
        indptr, items, batch_size=batch_size, maxlen=maxlen, min_hist=min_hist, seed=seed, replacement=replacement
    )
    got = sampler.batch(step)
    users, history, mask, target = ref.train_batch(
        indptr.tolist(), items.tolist(), eligible, batch_size, maxlen, min_hist, seed, step, replacement
    )
    assert got.users.tolist() == users
    assert got.history.tolist() == history
    assert got.mask.tolist() == mask
    assert got.target.tolist() == target


@settings(max_examples=60, deadline=None)
@given(data_seed=st.integers(0, 2**32 - 1), n_users=st.integers(1, 30), maxlen=st.integers(1, 10), bs=st.integers(1, 8))
def test_eval_batches_match_reference(data_seed, n_users, maxlen, bs):
    rng = np.random.default_rng(data_seed)
    indptr, items = random_csr(rng, n_users, 25)
    users = rng.permutation(n_users)[: rng.integers(0, n_users + 1)]
    batches = list(eval_batches(indptr, items, users, maxlen=maxlen, batch_size=bs))
    assert len(batches) == -(-len(users) // bs)
    history, mask, targets = ref.eval_rows(indptr.tolist(), items.tolist(), users.tolist(), maxlen)
    row = 0
    for b in batches:
        assert isinstance(b, EvalBatch)
        n = len(b.users)
        assert b.users.tolist() == users[row : row + n].tolist()
        assert b.history.tolist() == history[row : row + n]
        assert b.mask.tolist() == mask[row : row + n]
        got_targets = [b.target_items[b.target_indptr[i] : b.target_indptr[i + 1]].tolist() for i in range(n)]
        assert got_targets == targets[row : row + n]
        row += n
    assert row == len(users)


@settings(max_examples=60, deadline=None)
@given(data_seed=st.integers(0, 2**32 - 1), n_users=st.integers(0, 30), maxlen=st.integers(1, 10))
def test_recent_windows_match_reference(data_seed, n_users, maxlen):
    rng = np.random.default_rng(data_seed)
    indptr, items = random_csr(rng, n_users, 25)
    history, mask = recent_windows(indptr, items, maxlen)
    want_history, want_mask = ref.recent_rows(indptr.tolist(), items.tolist(), maxlen)
    assert (history.dtype, mask.dtype, history.shape) == (np.int64, np.float32, (n_users, maxlen))
    assert history.tolist() == want_history
    assert mask.tolist() == want_mask


@pytest.mark.parametrize(
    "indptr, items, maxlen, exc, match",
    [
        ([0, 2, 1], [1, 2], 3, ValueError, "^indptr"),
        ([0, 2, 5], [1, 2], 3, ValueError, "^indptr"),
        ([0, 2], [1.5, 2.0], 3, TypeError, "^items: expected an integer array"),
        ([0, 2], [1, 2**40], 3, ValueError, "^items: values do not fit int32"),
        ([0, 2], [1, 2], 0, ValueError, "^maxlen: expected an integer >= 1"),
        ([0, 2], [1, 2], 2.0, TypeError, "^maxlen: expected an integer"),
    ],
)
def test_recent_windows_bad_input_names_the_argument(indptr, items, maxlen, exc, match):
    with pytest.raises(exc, match=match):
        recent_windows(indptr, items, maxlen)


def test_reference_splitmix_matches_rust_test_vector():
    # The same published first outputs that rust/src/sampler.rs checks.
    r = ref.SplitMix64(0)
    assert r.next_u64() == 0xE220A8397B1DCDAF
    assert r.next_u64() == 0x6E789E6AA1B965F4


# ---- semantics, independent of the random stream -----------------------------------------------


def test_history_is_the_maxlen_items_before_the_target():
    lengths = [5, 6, 7, 30, 64, 200, 9, 5, 51, 50]
    indptr, items = positional_csr(lengths)
    for maxlen, min_hist in [(20, 4), (50, 4), (3, 1), (1, 2)]:
        sampler = TrainSampler(indptr, items, batch_size=6, maxlen=maxlen, min_hist=min_hist, seed=7)
        for step in range(40):
            b = sampler.batch(step)
            for r in range(6):
                u = int(b.users[r])
                k = int(b.target[r]) - 1000 * u - 1
                assert min_hist <= k < lengths[u]
                n = min(k, maxlen)
                want = [1000 * u + j + 1 for j in range(k - n, k)] + [0] * (maxlen - n)
                assert b.history[r].tolist() == want
                assert b.mask[r].tolist() == [1.0] * n + [0.0] * (maxlen - n)


def test_users_distinct_within_a_batch_and_never_too_short():
    lengths = [5, 4, 3, 10, 4, 8, 6, 5, 0, 12] * 5
    indptr, items = positional_csr(lengths)
    sampler = TrainSampler(indptr, items, batch_size=20, maxlen=5, min_hist=4, seed=1)
    eligible = {u for u, n in enumerate(lengths) if n > 4}
    assert sampler.n_users == len(eligible)
    for step in range(100):
        users = sampler.batch(step).users.tolist()
        assert len(set(users)) == 20
        assert set(users) <= eligible


def test_users_drawn_uniformly():
    n_users, bs, steps = 200, 50, 2000
    indptr, items = positional_csr([10] * n_users)
    sampler = TrainSampler(indptr, items, batch_size=bs, maxlen=4, seed=3)
    counts = np.bincount(np.concatenate([sampler.batch(s).users for s in range(steps)]), minlength=n_users)
    expected = bs * steps / n_users  # 500
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    # chi-square with 199 dof: mean 199, sd ~20; 320 is ~6 sd out.
    assert chi2 < 320, chi2


def test_cut_points_uniform():
    length, min_hist, steps = 14, 4, 4000
    indptr, items = positional_csr([length] * 8)
    sampler = TrainSampler(indptr, items, batch_size=8, maxlen=20, min_hist=min_hist, seed=11)
    ks = np.concatenate([(sampler.batch(s).target - 1) % 1000 for s in range(steps)])
    counts = np.bincount(ks, minlength=length)
    assert counts[:min_hist].sum() == 0
    observed = counts[min_hist:]
    expected = len(ks) / (length - min_hist)
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    assert chi2 < 40, (chi2, observed)  # 9 dof: a bound ~8 sd out


def test_eval_cut_is_floor_of_four_fifths():
    lengths = list(range(0, 40))
    indptr, items = positional_csr(lengths)
    (b,) = eval_batches(indptr, items, np.arange(len(lengths)), maxlen=6, batch_size=100)
    for u, n in enumerate(lengths):
        k = int(np.floor(0.8 * n))
        t = b.target_items[b.target_indptr[u] : b.target_indptr[u + 1]]
        assert ((t - 1) % 1000).tolist() == list(range(k, n))
        assert int(b.mask[u].sum()) == min(k, 6)


# ---- determinism, arrays, threads ----------------------------------------------------------------


def big_sampler(**kw: object) -> TrainSampler:
    rng = np.random.default_rng(0)
    indptr, items = random_csr(rng, 3000, 120, n_items=5000)
    args = dict(batch_size=256, maxlen=50, seed=5)
    args.update(kw)
    return TrainSampler(indptr, items, **args)  # type: ignore[arg-type]


def test_batches_are_a_function_of_seed_and_step():
    a, b = big_sampler(), big_sampler()
    for step in (0, 1, 17, 2**63 + 5):
        x, y = a.batch(step), b.batch(step)
        for u, v in zip(x, y):
            np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a.batch(0).users, a.batch(1).users)
    assert not np.array_equal(a.batch(0).users, big_sampler(seed=6).batch(0).users)
    # Iteration is batch(0), batch(1), ...
    it = iter(a)
    np.testing.assert_array_equal(next(it).history, a.batch(0).history)
    np.testing.assert_array_equal(next(it).history, a.batch(1).history)


def _digest(sampler: TrainSampler) -> str:
    import hashlib

    h = hashlib.sha256()
    for step in range(5):
        for arr in sampler.batch(step):
            h.update(arr.tobytes())
    return h.hexdigest()


def test_same_batches_with_one_thread():
    code = (
        "import numpy as np, sys; sys.path.insert(0, %r)\n"
        "from test_sampler import big_sampler, _digest\n"
        "print(_digest(big_sampler()))\n"
    ) % os.path.dirname(__file__)
    env = dict(os.environ, RAYON_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == _digest(big_sampler())


def test_arrays_are_contiguous_owned_numpy():
    b = big_sampler().batch(0)
    assert isinstance(b, TrainBatch)
    assert b.users.dtype == np.int64 and b.users.shape == (256,)
    assert b.history.dtype == np.int64 and b.history.shape == (256, 50)
    assert b.mask.dtype == np.float32 and b.mask.shape == (256, 50)
    assert b.target.dtype == np.int64 and b.target.shape == (256,)
    for a in b:
        assert a.flags.c_contiguous and a.flags.writeable


def test_torch_from_numpy_shares_memory():
    torch = pytest.importorskip("torch")
    b = big_sampler().batch(0)
    t = torch.from_numpy(b.history)
    assert t.data_ptr() == b.history.ctypes.data
    from comirec.data import as_tensors

    tb = as_tensors(b)
    assert isinstance(tb, TrainBatch) and tb.mask.dtype == torch.float32


def test_works_on_memory_mapped_read_only_arrays(tmp_path):
    indptr, items = positional_csr([6, 9, 12])
    np.save(tmp_path / "i.npy", indptr)
    np.save(tmp_path / "t.npy", items)
    ip, it = np.load(tmp_path / "i.npy", mmap_mode="r"), np.load(tmp_path / "t.npy", mmap_mode="r")
    assert not it.flags.writeable
    want = TrainSampler(indptr, items, batch_size=3, maxlen=4).batch(2).history
    for load_mmap in (True, False):  # copied into memory, or sampled straight from the map
        s = TrainSampler(ip, it, batch_size=3, maxlen=4, load_mmap=load_mmap)
        assert np.shares_memory(s.items, it) is (not load_mmap)
        np.testing.assert_array_equal(s.batch(2).history, want)
    (b,) = eval_batches(ip, it, [0, 1, 2], maxlen=4)
    assert b.target_indptr.tolist() == [0, 2, 4, 7]


def test_forked_child_does_not_hang():
    """rayon's pool does not survive fork(); the sampler must fall back to serial there."""
    s = big_sampler()
    parent = _digest(s)  # the parent has used the parallel path
    r, w = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork() with threads
        pid = os.fork()
    if pid == 0:  # child
        try:
            os.close(r)
            os.write(w, _digest(s).encode())
        finally:
            os._exit(0)
    os.close(w)
    import select

    ready, _, _ = select.select([r], [], [], 30)
    if not ready:
        os.kill(pid, 9)
    got = os.read(r, 200).decode() if ready else ""
    os.waitpid(pid, 0)
    os.close(r)
    assert ready, "the forked child hung"
    assert got == parent


# ---- prefetch and torch --------------------------------------------------------------------------


def test_prefetch_yields_the_same_batches():
    s = big_sampler()
    plain = list(s.iter(3, 8))
    pre = list(s.iter(3, 8, prefetch=2))
    assert len(plain) == len(pre) == 5
    for x, y in zip(plain, pre):
        np.testing.assert_array_equal(x.history, y.history)


def test_background_reraises_and_stops():
    def gen():
        yield 1
        raise KeyError("boom")

    it = background(gen(), 2)
    assert next(it) == 1
    with pytest.raises(KeyError, match="boom"):
        next(it)
    endless = background(iter(int, 1), 1)  # iter(int, 1): zeros forever
    assert next(endless) == 0
    endless.close()  # must not hang


def test_torch_dataset_with_dataloader():
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader

    from comirec.data import SamplerDataset

    s = big_sampler(batch_size=32, maxlen=10)
    ds = SamplerDataset(s, start=2, stop=6, prefetch=2)
    assert len(ds) == 4
    got = list(DataLoader(ds, batch_size=None))
    assert len(got) == 4
    assert isinstance(got[0].history, torch.Tensor) and got[0].history.dtype == torch.int64
    np.testing.assert_array_equal(got[0].history.numpy(), s.batch(2).history)
    np.testing.assert_array_equal(got[3].target.numpy(), s.batch(5).target)


# ---- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        (dict(indptr=[1, 5, 9]), ValueError, r"indptr\[0\] == 0"),
        (dict(indptr=[0, 6, 5, 9]), ValueError, "non-decreasing"),
        (dict(indptr=[0, 5, 10]), ValueError, r"indptr\[-1\] == len\(items\)"),
        (dict(indptr=[0.0, 5.0, 9.0]), TypeError, "indptr: expected an integer array"),
        (dict(indptr=[[0, 5, 9]]), ValueError, "indptr: expected a 1-D array"),
        (dict(items=np.full(9, 2**40)), ValueError, "items: values do not fit int32"),
        (dict(users=[0, 2]), ValueError, r"users: expected user indices in \[0, 2\)"),
        (dict(users=[-1]), ValueError, "users: expected user indices"),
        (dict(batch_size=3), ValueError, "batch_size: expected at most 2"),
        (dict(batch_size=0), ValueError, "batch_size: expected an integer >= 1"),
        (dict(maxlen=0), ValueError, "maxlen"),
        (dict(min_hist=0), ValueError, "min_hist"),
        (dict(min_hist=5), ValueError, "users: expected at least one user with more than min_hist = 5 items"),
        (dict(seed=-1), ValueError, "seed"),
        (dict(seed=2**64), ValueError, "seed"),
        (dict(batch_size=2.0), TypeError, "batch_size: expected an integer"),
    ],
)
def test_bad_input(kwargs, exc, match):
    args = dict(indptr=[0, 5, 9], items=np.arange(1, 10), batch_size=2, maxlen=3, min_hist=1)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        TrainSampler(**args)  # type: ignore[arg-type]


def test_bad_step_and_eval_input():
    s = TrainSampler([0, 5, 9], np.arange(1, 10), batch_size=2, maxlen=3, min_hist=1)
    with pytest.raises(ValueError, match="step"):
        s.batch(-1)
    with pytest.raises(ValueError, match="step"):
        s.batch(2**64)
    with pytest.raises(ValueError, match=r"users: expected user indices in \[0, 2\)"):
        list(eval_batches([0, 5, 9], np.arange(1, 10), [0, 2]))
    with pytest.raises(ValueError, match="batch_size"):
        list(eval_batches([0, 5, 9], np.arange(1, 10), [0], batch_size=0))
    with pytest.raises(ValueError, match="non-decreasing"):
        list(eval_batches([0, 6, 5, 9], np.arange(1, 10), [0]))


def test_replacement_allows_large_batches():
    s = TrainSampler([0, 5, 9], np.arange(1, 10), batch_size=16, maxlen=3, min_hist=1, replacement=True)
    b = s.batch(0)
    assert b.users.shape == (16,) and set(b.users.tolist()) <= {0, 1}


def test_torch_dataset_in_forked_dataloader_workers():
    """Two DataLoader workers split the steps between them: the same batches as one process."""
    pytest.importorskip("torch")
    from torch.utils.data import DataLoader

    s = big_sampler()  # 256 x 50: the parallel path, which the parent has used before the fork
    s.batch(0)
    from comirec.data import SamplerDataset

    ds = SamplerDataset(s, start=0, stop=6, prefetch=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork() with threads running
        loader = DataLoader(ds, batch_size=None, num_workers=2, multiprocessing_context="fork", timeout=60)
        got = sorted((int(b.target[0]), b.history.numpy().tobytes()) for b in loader)
    want = sorted((int(s.batch(k).target[0]), s.batch(k).history.tobytes()) for k in range(6))
    assert got == want
