"""comirec.metrics: hand-computed cases, parity with comirec.reference (hypothesis) and ranx, bad input."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import comirec
from comirec import reference


def d(rank: int) -> float:
    """The NDCG discount 1 / log2(rank + 2), written out for the hand-computed cases."""
    return 1.0 / math.log2(rank + 2)


def test_standard_protocol_by_hand() -> None:
    # User 0: recs [7, 3, 9, 1], targets {3, 1, 5}: hits at ranks 1 and 3.
    # User 1: recs [2, -1, 4, 6], targets [6, 6]: S = {6}, hit at rank 3 only.
    recs = np.array([[7, 3, 9, 1], [2, -1, 4, 6]])
    targets = (np.array([0, 3, 5]), np.array([3, 1, 5, 6, 6]))
    cats = np.array([0, 0, 1, 1, 1, 0, 2, 2, 0, 1])  # 7 -> 2, 3 -> 1, 9 -> 1, 1 -> 0; 2, 4 -> 1, 6 -> 2
    pu = comirec.metrics(recs, targets, cats, ks=(2, 4), per_user=True)
    assert pu["recall@2"].tolist() == pytest.approx([1 / 3, 0.0])
    assert pu["ndcg@2"].tolist() == pytest.approx([0.63092975357 / (1 + 0.63092975357), 0.0])
    assert pu["hitrate@2"].tolist() == [1.0, 0.0]
    assert pu["diversity@2"].tolist() == [1.0, 0.0]  # user 1 has one non-empty slot in the top 2
    assert pu["recall@4"].tolist() == pytest.approx([2 / 3, 1.0])
    # user 0: (1/log2 3 + 1/log2 5) / (1 + 1/log2 3 + 1/log2 4); user 1: (1/log2 5) / 1
    assert pu["ndcg@4"].tolist() == pytest.approx([(0.63092975357 + 0.43067655807) / 2.13092975357, 0.43067655807])
    assert pu["hitrate@4"].tolist() == [1.0, 1.0]
    # user 0: categories [2, 1, 1, 0]: 6 pairs, 1 alike. user 1: [1, 1, 2]: 3 pairs, 1 alike.
    assert pu["diversity@4"].tolist() == pytest.approx([5 / 6, 2 / 3])
    means = comirec.metrics(recs, targets, cats, ks=(2, 4))
    assert list(means) == list(pu)
    for key in means:
        assert means[key] == pytest.approx(pu[key].mean())


def test_comirec_protocol_by_hand() -> None:
    # targets [5, 3, 3, 8] (3 twice), recs {3, 4}: hits = 2 (both 3s), recall = 2 / 4;
    # the authors' DCG uses the targets' positions 1 and 2, normalised by positions 0 and 1.
    recs = np.array([[3, 4, 9]])
    targets = [np.array([5, 3, 3, 8])]
    res = comirec.metrics(recs, targets, ks=(2,), protocol="comirec")
    assert res["recall@2"] == pytest.approx(0.5)
    assert res["ndcg@2"] == pytest.approx((d(1) + d(2)) / (d(0) + d(1)))
    assert res["hitrate@2"] == 1.0
    # the same input under the standard protocol: |S| = 3, one hit at rank 0
    res = comirec.metrics(recs, targets, ks=(2,))
    assert res["recall@2"] == pytest.approx(1 / 3)
    assert res["ndcg@2"] == pytest.approx(1 / (1 + d(1)))
    # no hit: NDCG 0
    res = comirec.metrics(np.array([[1, 2]]), [np.array([7])], ks=2, protocol="comirec")
    assert (res["recall@2"], res["ndcg@2"], res["hitrate@2"]) == (0.0, 0.0, 0.0)


def test_comirec_protocol_diversity_counts_distinct_items() -> None:
    recs = np.array([[1, 1, 2]])
    cats = np.array([0, 0, 1])
    targets = [np.array([1])]
    # standard: slots [1, 1, 2] -> 3 pairs, 1 alike; comirec: {1, 2} -> 1 pair, different
    assert comirec.metrics(recs, targets, cats, ks=3)["diversity@3"] == pytest.approx(2 / 3)
    assert comirec.metrics(recs, targets, cats, ks=3, protocol="comirec")["diversity@3"] == 1.0
    # a repeated recommendation is a hit once (standard): recall 1, NDCG 1
    res = comirec.metrics(recs, targets, ks=3)
    assert (res["recall@3"], res["ndcg@3"]) == (1.0, 1.0)


def test_users_without_targets_are_nan_and_left_out_of_means() -> None:
    recs = np.array([[1, 2], [1, 2], [3, 4]])
    targets = [np.array([1]), np.array([], dtype=np.int64), np.array([9])]
    cats = np.array([0, 0, 1, 0, 0])
    pu = comirec.metrics(recs, targets, cats, ks=2, per_user=True)
    assert np.isnan(pu["recall@2"][1]) and np.isnan(pu["ndcg@2"][1]) and np.isnan(pu["hitrate@2"][1])
    assert pu["diversity@2"].tolist() == [1.0, 1.0, 0.0]
    means = comirec.metrics(recs, targets, cats, ks=2)
    assert means["recall@2"] == pytest.approx(0.5)  # users 0 and 2
    assert means["diversity@2"] == pytest.approx(2 / 3)  # all three users
    none = comirec.metrics(recs[1:2], targets[1:2], ks=2)
    assert math.isnan(none["recall@2"])


def test_empty_batch() -> None:
    pu = comirec.metrics(np.zeros((0, 5), np.int64), (np.zeros(1, np.int64), np.zeros(0, np.int64)), ks=5, per_user=True)
    assert set(pu) == {"recall@5", "ndcg@5", "hitrate@5"}
    assert all(v.shape == (0,) and v.dtype == np.float64 for v in pu.values())
    means = comirec.metrics(np.zeros((0, 5), np.int32), [], np.zeros(3, np.int64), ks=5)
    assert set(means) == {"recall@5", "ndcg@5", "hitrate@5", "diversity@5"}
    assert all(math.isnan(v) for v in means.values())


@st.composite
def metric_cases(draw: st.DrawFn) -> tuple[np.ndarray, list[np.ndarray], np.ndarray, list[int]]:
    b = draw(st.integers(0, 6))
    width = draw(st.integers(1, 12))
    n_items = draw(st.integers(1, 25))
    recs = np.array(
        draw(st.lists(st.integers(-1, n_items - 1), min_size=b * width, max_size=b * width)), dtype=np.int64
    ).reshape(b, width)
    targets = [np.array(draw(st.lists(st.integers(0, n_items + 3), max_size=15)), dtype=np.int64) for _ in range(b)]
    cats = np.array(draw(st.lists(st.integers(0, 4), min_size=n_items, max_size=n_items)))
    ks = draw(st.lists(st.integers(1, width), min_size=1, max_size=4))
    return recs, targets, cats, ks


def csr(targets: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    indptr = np.concatenate([[0], np.cumsum([len(t) for t in targets])]).astype(np.int64)
    items = np.concatenate(targets) if targets else np.zeros(0, np.int64)
    return indptr, items.astype(np.int64)


@settings(max_examples=250, deadline=None)
@given(
    case=metric_cases(),
    protocol=st.sampled_from(["standard", "comirec"]),
    with_cats=st.booleans(),
    as_csr=st.booleans(),
    narrow=st.booleans(),
)
def test_matches_reference(
    case: tuple[np.ndarray, list[np.ndarray], np.ndarray, list[int]],
    protocol: str,
    with_cats: bool,
    as_csr: bool,
    narrow: bool,
) -> None:
    recs, targets, cats, ks = case
    c = cats if with_cats else None
    want = reference.metrics(recs, targets, c, ks, protocol, per_user=True)
    dt = np.int32 if narrow else np.int64
    tg = tuple(a.astype(dt) for a in csr(targets)) if as_csr else [t.astype(dt) for t in targets]
    got = comirec.metrics(recs.astype(dt)[:, ::1], tg, c, ks, protocol, per_user=True)  # type: ignore[arg-type]
    assert list(got) == list(want)
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-12, atol=0, equal_nan=True, err_msg=key)
    got_means = comirec.metrics(recs, tg, c, ks, protocol)  # type: ignore[arg-type]
    want_means = reference.metrics(recs, targets, c, ks, protocol)
    for key in want_means:
        assert got_means[key] == pytest.approx(want_means[key], rel=1e-12, nan_ok=True), key


@pytest.mark.parametrize("protocol", ["standard", "comirec"])
def test_long_lists_and_large_categories_match_reference(protocol: str) -> None:
    # Short lists (<= 64 targets or recommendations) go through a Bloom filter, longer ones
    # through a hash map; categories >= 2^16 are counted in a hash map too. Both paths, with
    # repeated targets and repeated / empty recommendations, against the reference.
    rng = np.random.default_rng(7)
    b, width = 40, 90
    recs = rng.integers(-1, 300, size=(b, width))
    recs[::3, :] = rng.permutation(300)[:width]  # rows of distinct items too
    lens = rng.integers(0, 200, size=b)
    targets = [rng.integers(0, 300, size=n) for n in lens]
    for cats in (rng.integers(0, 7, size=300), rng.integers(0, 7, size=300) * 70_001):
        for ks in ([5, 64, 65, 90], [64], [90, 1]):
            for rows in (slice(0, b), slice(0, b, 2)):
                want = reference.metrics(recs[rows], targets[rows], cats, ks, protocol, per_user=True)
                got = comirec.metrics(recs[rows], targets[rows], cats, ks, protocol, per_user=True)
                for key in want:
                    np.testing.assert_allclose(got[key], want[key], rtol=1e-12, atol=0, equal_nan=True, err_msg=key)


@pytest.mark.slow  # ranx compiles its numba kernels on first use (20-50 s)
def test_matches_ranx_on_the_standard_protocol() -> None:
    with warnings.catch_warnings():  # numba's type-safety warnings while ranx compiles
        warnings.simplefilter("ignore")
        from ranx import Qrels, Run, evaluate

        rng = np.random.default_rng(3)
        b, n = 200, 20
        recs = np.stack([rng.choice(300, size=n, replace=False) for _ in range(b)]) + 1
        targets = [rng.choice(300, size=rng.integers(1, 30), replace=True) + 1 for _ in range(b)]
        targets[0] = recs[0, [3, 0, 17]]  # make sure some users have several hits
        # zero-padded query ids: ranx returns per-query values in sorted id order
        qrels = Qrels({f"u{u:04d}": {str(i): 1 for i in t.tolist()} for u, t in enumerate(targets)})
        run = Run({f"u{u:04d}": {str(i): float(n - r) for r, i in enumerate(recs[u].tolist())} for u in range(b)})
        ks = (5, 20)
        names = [f"{m}@{k}" for k in ks for m in ("recall", "ndcg", "hit_rate")]
        want = evaluate(qrels, run, names, return_mean=False)
    got = comirec.metrics(recs, targets, ks=ks, per_user=True)
    assert got["hitrate@20"].sum() > 10 and got["recall@20"].max() > 0.5  # not a vacuous check
    for k in ks:
        np.testing.assert_allclose(got[f"recall@{k}"], want[f"recall@{k}"], rtol=1e-9)
        np.testing.assert_allclose(got[f"ndcg@{k}"], want[f"ndcg@{k}"], rtol=1e-9)
        np.testing.assert_allclose(got[f"hitrate@{k}"], want[f"hit_rate@{k}"], rtol=1e-9)


@pytest.mark.parametrize(
    ("change", "exc", "arg"),
    [
        ({"ks": (2, 5)}, ValueError, "ks"),
        ({"ks": (0,)}, ValueError, "ks"),
        ({"ks": ()}, ValueError, "ks"),
        ({"ks": (2.5,)}, TypeError, "ks"),
        ({"ks": "20"}, TypeError, "ks"),
        ({"protocol": "trec"}, ValueError, "protocol"),
        ({"protocol": 1}, TypeError, "protocol"),
        ({"targets": (np.array([1, 1, 2]), np.array([1, 2]))}, ValueError, "targets"),
        ({"targets": (np.array([0, 2, 1]), np.array([1, 2]))}, ValueError, "targets"),
        ({"targets": (np.array([0, 1, 3]), np.array([1, 2]))}, ValueError, "targets"),
        ({"targets": (np.array([0, 2]), np.array([1, 2]))}, ValueError, "targets"),
        ({"targets": (np.array([0, 1, 2]), np.array([1.0, 2.0]))}, TypeError, "targets"),
        ({"targets": (np.array([0, 1, 2]), np.array([1, -2]))}, ValueError, "targets"),
        ({"targets": [np.array([1])]}, ValueError, "targets"),
        ({"targets": np.array([[1], [2]])}, TypeError, "targets"),
        ({"recs": np.array([1, 2, 3, 4])}, ValueError, "recs"),
        ({"recs": np.array([[1.0, 2.0], [3.0, 4.0]])}, TypeError, "recs"),
        ({"cats": np.array([0, 0, 0])}, ValueError, "recs"),
        ({"cats": np.array([0, 0, -1, 0, 0])}, ValueError, "cats"),
        ({"cats": np.zeros((5, 1), np.int64)}, ValueError, "cats"),
    ],
)
def test_bad_input_raises_naming_the_argument(change: dict, exc: type, arg: str) -> None:
    kwargs = {
        "recs": np.array([[1, 2], [3, 4]]),
        "targets": (np.array([0, 1, 2]), np.array([1, 2])),
        "cats": np.zeros(5, np.int64),
        "ks": (2,),
        "protocol": "standard",
    }
    kwargs.update(change)
    with pytest.raises(exc, match=rf"^{arg}: "):
        comirec.metrics(**kwargs)  # type: ignore[arg-type]


def test_an_empty_target_list_is_an_empty_integer_array() -> None:
    # issue 9, item 7: np.asarray([]) is float64; it must not make the targets floats
    recs = np.array([[1, 2, 3, 4], [4, 5, 6, 7]])
    want = reference.metrics(recs, [[], [4]], ks=(4,))
    assert want["recall@4"] == 1.0
    for targets in (
        [[], [4]],
        [np.array([]), np.array([4], np.int32)],
        [[], np.array([4], np.uint64)],
        (np.array([0, 0, 1]), np.array([4])),
        (np.array([0, 0, 1]), [4]),
    ):
        assert comirec.metrics(recs, targets, ks=(4,)) == want
    nobody = comirec.metrics(recs, [[], []], ks=(4,), per_user=True)
    assert np.isnan(nobody["recall@4"]).all()
    assert comirec.metrics(recs, (np.array([0, 0, 0]), []), ks=(4,)).keys() == want.keys()
    with pytest.raises(TypeError, match="^targets: "):
        comirec.metrics(recs, [[], [4.0]], ks=(4,))  # a non-empty float list is still refused


def _fibonacci_colliding_ids(count: int) -> np.ndarray:
    """Ids that all share one slot of a hash table hashed by ``id * C >> shift`` (the unkeyed
    Fibonacci hash metrics used): the multiples of C's inverse mod 2**64, as an attacker would pick."""
    c = 0x9E3779B97F4A7C15
    inv = pow(c, -1, 2**64)
    ids = []
    j = 1
    while len(ids) < count:
        x = j * inv % 2**64
        if x < 2**63:
            ids.append(x)
        j += 1
    return np.array(ids, dtype=np.int64)


@pytest.mark.parametrize("protocol", ["standard", "comirec"])
def test_colliding_ids_cost_about_as_much_as_random_ones(protocol: str) -> None:
    # issue 9, item 10: a ratio in one process, not a wall-clock limit
    import time

    count = 32_768
    chosen = _fibonacci_colliding_ids(count)
    random = np.random.default_rng(0).integers(0, 2**62, count)

    def cost(ids: np.ndarray) -> float:
        if protocol == "standard":  # long target lists go through the hash set
            args = (np.array([[1]]), [ids])
        else:  # long recommendation lists do
            args = (ids[None, :], [ids[:10]])
        ks = (args[0].shape[1],)
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            comirec.metrics(*args, ks=ks, protocol=protocol)
            times.append(time.perf_counter() - t0)
        return sorted(times)[1]

    cost(random)  # warm up
    ratio = cost(chosen) / cost(random)
    assert ratio < 20, f"colliding ids took {ratio:.0f}x the time of random ones"


def test_protocol_with_a_lone_surrogate_is_a_clear_error() -> None:
    # Was UnicodeEncodeError from the native boundary (issue 9 item 9).
    with pytest.raises(ValueError, match=r"^protocol: expected 'standard' or 'comirec'"):
        comirec.metrics(np.array([[1, 2]]), [np.array([1])], ks=(2,), protocol="standard\udcff")


def test_a_ragged_target_list_names_targets() -> None:
    with pytest.raises(ValueError, match=r"^targets: expected a rectangular array, got a ragged nested list"):
        comirec.metrics(np.array([[1, 2]]), [[1, [2, 3]]], ks=(1,))
