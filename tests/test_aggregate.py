"""comirec.aggregate: parity with comirec.reference (hypothesis), hand-checked cases, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import comirec
from comirec import reference

LAMS = [0.0, 1e-6, 0.05, 0.1, 0.25, 1.0, 3.0, 1e6, 1e300, math.inf]
# A coarse score grid gives many exact ties (within a row, across rows, across gains).
SCORE_GRID = [-1.0, -0.5, -0.25, 0.0, 0.125, 0.25, 0.5, 0.75, 1.0, 2.0]


@st.composite
def batches(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    b = draw(st.integers(0, 4))
    k = draw(st.integers(1, 4))
    slots = draw(st.integers(0, 8))
    n_items = draw(st.integers(1, 20))
    n_cats = draw(st.integers(1, 5))
    items = draw(st.lists(st.integers(-1, n_items - 1), min_size=b * k * slots, max_size=b * k * slots))
    scores = draw(
        st.lists(
            st.sampled_from(SCORE_GRID) | st.floats(-3, 3, width=32),
            min_size=b * k * slots,
            max_size=b * k * slots,
        )
    )
    items_arr = np.array(items, dtype=np.int64).reshape(b, k, slots)
    scores_arr = np.array(scores, dtype=np.float32).reshape(b, k, slots)
    if draw(st.booleans()):  # rows sorted by score, as retrieval returns them (ties in any id order)
        scores_arr = -np.sort(-scores_arr, axis=2)
    cats = np.array(draw(st.lists(st.integers(0, n_cats - 1), min_size=n_items, max_size=n_items)))
    return items_arr, scores_arr, cats


def assert_same(got: comirec.Candidates, want: comirec.Candidates) -> None:
    assert got.items.dtype == np.int64 and got.scores.dtype == np.float32
    assert got.items.shape == want.items.shape and got.scores.shape == want.scores.shape
    np.testing.assert_array_equal(got.items, want.items)
    np.testing.assert_array_equal(got.scores, want.scores)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=batches(), lam=st.sampled_from(LAMS) | st.floats(0, 5), n=st.integers(1, 40))
def test_matches_reference(batch: tuple[np.ndarray, np.ndarray, np.ndarray], lam: float, n: int) -> None:
    items, scores, cats = batch
    want = reference.aggregate((items, scores), cats, lam, n)
    assert_same(comirec.aggregate((items, scores), cats, lam, n), want)


@settings(max_examples=60, deadline=None)
@given(batch=batches(), lam=st.sampled_from(LAMS), n=st.integers(1, 12), data=st.data())
def test_dtypes_and_layouts_do_not_change_the_result(
    batch: tuple[np.ndarray, np.ndarray, np.ndarray], lam: float, n: int, data: st.DataObject
) -> None:
    items, scores, cats = batch
    want = reference.aggregate((items, scores), cats, lam, n)
    item_dtype = data.draw(st.sampled_from([np.int64, np.int32, np.int16, np.uint16]))
    if item_dtype == np.uint16:
        items = np.where(items < 0, 0, items)  # no -1 in unsigned ids
        want = reference.aggregate((items, scores), cats, lam, n)
    cats_t = cats.astype(data.draw(st.sampled_from([np.int64, np.int32, np.int8])))
    # non-contiguous views: the same values through a transposed copy
    it = np.ascontiguousarray(items.astype(item_dtype).transpose(2, 1, 0)).transpose(2, 1, 0)
    sc = np.asfortranarray(scores.astype(data.draw(st.sampled_from([np.float32, np.float64]))))
    assert_same(comirec.aggregate(comirec.Candidates(it, sc), cats_t[::1], lam, n), want)


@pytest.mark.parametrize("lam", [0.0, 0.2, math.inf])
def test_many_interests_and_inner_empty_slots_match_reference(lam: float) -> None:
    # More than 64 interests are merged as one sorted row; empty slots inside rows and tied
    # scores take the exact path.
    rng = np.random.default_rng(3)
    for b, k, slots in ((5, 3, 12), (3, 70, 4)):
        items = np.where(rng.random((b, k, slots)) < 0.1, -1, rng.integers(0, 40, size=(b, k, slots)))
        scores = -np.sort(-rng.integers(0, 6, size=(b, k, slots)).astype(np.float32) / 4, axis=2)
        cats = np.arange(40) % 5
        assert_same(comirec.aggregate((items, scores), cats, lam, 9), reference.aggregate((items, scores), cats, lam, 9))


def test_ids_of_2_to_the_32_and_above() -> None:
    # Merged through rank codes (same order), mapped back to the ids.
    rng = np.random.default_rng(4)
    ids = rng.integers(0, 30, size=(6, 4, 10))
    items = np.where(rng.random(ids.shape) < 0.1, -1, ids * 3_000_000_019 + ids % 2)
    scores = -np.sort(-rng.integers(0, 6, size=ids.shape).astype(np.float32) / 4, axis=2)
    for rows in (scores, -np.sort(-rng.standard_normal(ids.shape).astype(np.float32), axis=2)):
        assert_same(comirec.aggregate((items, rows), None, 0.0, 12), reference.aggregate((items, rows), None, 0.0, 12))


def test_hand_checked_example() -> None:
    # Two interests; item 3 appears in both (f = 0.8); slot -1 is empty.
    items = np.array([[[5, 3, -1], [3, 7, 9]]])
    scores = np.array([[[0.9, 0.5, 0.0], [0.8, 0.4, 0.1]]], dtype=np.float32)
    cats = np.array([-1, 0, 0, 2, 0, 2, 0, 1, 0, 0])  # 5 -> 2, 3 -> 2, 7 -> 1, 9 -> 0
    out = comirec.aggregate((items, scores), cats, 0.0, n=5)
    assert out.items.tolist() == [[5, 3, 7, 9, -1]]
    assert out.scores[0, :4].tolist() == pytest.approx([0.9, 0.8, 0.4, 0.1])
    assert out.scores[0, 4] == -np.inf
    # lam = 0.5. Pick 1: 5 (0.9). Pick 2: 3 -> 0.8 + 0, 7 -> 0.4 + 0.5 = 0.9, 9 -> 0.1 + 0.5: 7.
    # Pick 3: 3 -> 0.8 + 0.5 = 1.3, 9 -> 0.1 + 1.0 = 1.1: 3. Then 9.
    assert comirec.aggregate((items, scores), cats, 0.5, n=4).items.tolist() == [[5, 7, 3, 9]]
    # lam = 0.3. Pick 2: 3 -> 0.8, 7 -> 0.7, 9 -> 0.4: 3. Pick 3: 7 -> 1.0, 9 -> 0.7: 7.
    assert comirec.aggregate((items, scores), cats, 0.3, n=4).items.tolist() == [[5, 3, 7, 9]]
    # lam = inf. Pick 2: 7 and 9 add a new category; 7 has the larger f. Pick 3: 9 differs from
    # both picks, 3 from one.
    out = comirec.aggregate((items, scores), cats, math.inf, n=4)
    assert out.items.tolist() == [[5, 7, 9, 3]]
    assert out.scores[0].tolist() == pytest.approx([0.9, 0.4, 0.1, 0.8])


def test_tie_breaks_by_hand() -> None:
    # Equal scores: the smaller id first, also when a row lists them in another order.
    items = np.array([[[8, 2, 6], [4, 1, 3]]])
    scores = np.array([[[1.0, 1.0, 0.5], [1.0, 0.5, 0.25]]], dtype=np.float32)
    out = comirec.aggregate((items, scores), None, 0.0, n=6)
    assert out.items.tolist() == [[2, 4, 8, 1, 6, 3]]
    # lam = 1, categories: 2, 4 -> 0; 8, 1 -> 1; 6, 3 -> 2. Pick 1: 2 (f ties, smaller id).
    # Pick 2: 8 -> 1 + 1 = 2 beats 4 -> 1 + 0, 6 -> 1.5. Pick 3: 6 -> 0.5 + 2 = 2.5 beats
    # 3 -> 0.25 + 2, 4 -> 1 + 1.
    cats = np.zeros(9, dtype=np.int64)
    cats[[8, 1]] = 1
    cats[[6, 3]] = 2
    assert comirec.aggregate((items, scores), cats, 1.0, n=3).items.tolist() == [[2, 8, 6]]
    # Equal gains, lam = 0.5: after 1, item 2 gains 1.0 + 0 and item 3 gains 0.5 + 0.5: larger f.
    items = np.array([[[1, 2, 3]]])
    scores = np.array([[[1.0, 1.0, 0.5]]], dtype=np.float32)
    assert comirec.aggregate((items, scores), np.array([0, 0, 0, 1]), 0.5, n=3).items.tolist() == [[1, 2, 3]]
    # Equal gains and equal f: 4 and 3 both gain 0.5 + 0.5 after 1: the smaller id.
    items = np.array([[[1, 4, 3]]])
    scores = np.array([[[1.0, 0.5, 0.5]]], dtype=np.float32)
    cats = np.array([0, 0, 0, 2, 1])
    assert comirec.aggregate((items, scores), cats, 0.5, n=3).items.tolist() == [[1, 3, 4]]


def test_fewer_candidates_than_n_and_empty_batches() -> None:
    items = np.array([[[1, 1, -1]], [[-1, -1, -1]]])
    scores = np.zeros((2, 1, 3), dtype=np.float32)
    out = comirec.aggregate((items, scores), np.zeros(2, dtype=np.int32), 0.3, n=3)
    assert out.items.tolist() == [[1, -1, -1], [-1, -1, -1]]
    assert np.isneginf(out.scores[:, 1:]).all() and out.scores[0, 0] == 0.0
    for lam in (0.0, 0.1, math.inf):
        empty = comirec.aggregate((np.zeros((0, 4, 50), np.int64), np.zeros((0, 4, 50), np.float32)), [0], lam, 7)
        assert empty.items.shape == (0, 7) and empty.items.dtype == np.int64
        assert empty.scores.shape == (0, 7) and empty.scores.dtype == np.float32


def test_padding_category_may_be_negative_and_lam_zero_never_reads_cats() -> None:
    items = np.array([[[3, 1, 2]]])
    scores = np.array([[[0.3, 0.2, 0.1]]], dtype=np.float32)
    cats = np.array([-1, 0, 1, 0])
    assert comirec.aggregate((items, scores), cats, 0.2, n=3).items.tolist() == [[3, 2, 1]]
    assert comirec.aggregate((items, scores), None, 0.0, n=2).items.tolist() == [[3, 1]]
    assert comirec.aggregate((items, scores), np.array([-5]), 0.0, n=2).items.tolist() == [[3, 1]]


def test_large_batches_run_in_parallel_with_the_same_result() -> None:
    rng = np.random.default_rng(0)
    b, k, slots = 3000, 4, 20
    items = rng.integers(0, 500, size=(b, k, slots))
    scores = -np.sort(-rng.random((b, k, slots), dtype=np.float32).round(2), axis=2)
    cats = rng.integers(0, 20, size=500)
    for lam in (0.0, 0.1):
        got = comirec.aggregate((items, scores), cats, lam, n=30)
        some = slice(0, b, 149)
        want = reference.aggregate((items[some], scores[some]), cats, lam, 30)
        assert_same(comirec.Candidates(got.items[some], got.scores[some]), want)


@pytest.mark.parametrize(
    ("kwargs", "exc", "arg"),
    [
        ({"scores": np.float32("nan")}, ValueError, "scores"),
        ({"scores": np.float32("inf")}, ValueError, "scores"),
        ({"scores": 1e300}, ValueError, "scores"),
        ({"lam": -0.1}, ValueError, "lam"),
        ({"lam": math.nan}, ValueError, "lam"),
        ({"lam": "0.1"}, TypeError, "lam"),
        ({"lam": True}, TypeError, "lam"),
        ({"n": 0}, ValueError, "n"),
        ({"n": -3}, ValueError, "n"),
        ({"n": 2.0}, TypeError, "n"),
        ({"items": np.zeros((1, 2), np.int64)}, ValueError, "items"),
        ({"items": np.zeros((1, 2, 3), np.float32)}, TypeError, "items"),
        ({"scores_shape": (1, 2, 2)}, ValueError, "scores"),
        ({"scores_dtype": np.int64}, TypeError, "scores"),
        ({"cats": np.array([0, 1])}, ValueError, "items"),
        ({"cats": np.array([0, 0, -2, 0, 0, 0])}, ValueError, "cats"),
        ({"cats": None}, ValueError, "cats"),
        ({"cats": np.zeros((6, 1), np.int64)}, ValueError, "cats"),
        ({"cats": np.zeros(6, np.float64)}, TypeError, "cats"),
    ],
)
def test_bad_input_raises_naming_the_argument(kwargs: dict, exc: type, arg: str) -> None:
    items = np.array([[[1, 2, 3], [2, 4, -1]]])
    scores = np.array([[[0.5, 0.4, 0.3], [0.6, 0.1, 0.0]]], dtype=np.float32)
    cats = np.zeros(6, np.int64)
    lam, n = 0.5, 3
    if "scores" in kwargs:
        scores = scores.astype(np.float64)
        scores[0, 1, 1] = kwargs["scores"]
    if "scores_shape" in kwargs:
        scores = scores[:, :, :2]
    if "scores_dtype" in kwargs:
        scores = scores.astype(kwargs["scores_dtype"])
    items = kwargs.get("items", items)
    cats = kwargs.get("cats", cats)
    lam = kwargs.get("lam", lam)
    n = kwargs.get("n", n)
    with pytest.raises(exc, match=rf"^{arg}: "):
        comirec.aggregate((items, scores), cats, lam, n)


def test_bad_cands_container() -> None:
    with pytest.raises(TypeError, match="^cands: "):
        comirec.aggregate(np.zeros((1, 1, 1)), None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="^cands: "):
        comirec.aggregate((np.zeros((1, 1, 1), np.int64),), None)  # type: ignore[arg-type]


def test_nan_in_an_empty_slot_is_ignored() -> None:
    items = np.array([[[1, -1]]])
    scores = np.array([[[0.5, np.nan]]], dtype=np.float32)
    assert comirec.aggregate((items, scores), None, 0.0, n=1).items.tolist() == [[1]]


def test_every_candidate_is_checked_against_cats_whatever_n_and_the_scores() -> None:
    # issue 9, item 6: item 9 is beyond a table of 5 however few items are picked
    items = np.array([[[1, 9]]])
    for scores in ([[[0.9, 0.1]]], [[[0.1, 0.9]]]):
        for n in (1, 2, 5):
            cands = (items, np.array(scores, np.float32))
            with pytest.raises(ValueError, match=r"^items: item id 9 .* beyond the category table"):
                comirec.aggregate(cands, np.zeros(5, np.int64), 1.0, n)
            with pytest.raises(ValueError, match=r"^items: "):
                reference.aggregate(cands, np.zeros(5, np.int64), 1.0, n)
            assert comirec.aggregate(cands, np.zeros(5, np.int64), 0.0, n).items[0, 0] in (1, 9)  # λ = 0: not read
    # a table longer than the batch's candidates, with a negative category on the last candidate
    cats = np.zeros(100, np.int64)
    cats[7] = -3
    cands = (np.array([[[1, 2, 7]]]), np.array([[[0.9, 0.5, 0.1]]], np.float32))
    for n in (1, 3):
        with pytest.raises(ValueError, match=r"^cats: item 7 has category -3"):
            comirec.aggregate(cands, cats, math.inf, n)
    # ... which matters only for candidates; item 0 is no candidate while cats[0] < 0
    cats[7], cats[50] = 0, -1
    assert comirec.aggregate(cands, cats, 0.5, 1).items.tolist() == [[1]]
    cats[0] = -1
    with pytest.raises(ValueError, match=r"^cats: item 0 has category -1"):
        comirec.aggregate((np.array([[[1, 0]]]), np.array([[[0.9, 0.1]]], np.float32)), cats[:3], 0.5, 1)


def test_negative_zero_scores_come_back_as_positive_zero() -> None:
    # Documented choice (issue 9, item 11): -0.0 and 0.0 are one score, f is +0.0 (the reference agrees).
    items = np.array([[[3, 5], [5, 8]]])
    for lam in (0.0, 0.5):
        scores = np.array([[[-0.0, -0.0], [0.0, -1.0]]], np.float32)
        got = comirec.aggregate((items, scores), np.zeros(9, np.int64), lam, 4)
        want = reference.aggregate((items, scores), np.zeros(9, np.int64), lam, 4)
        assert got.items.tolist() == want.items.tolist() == [[3, 5, 8, -1]]  # 3 and 5 tie: smaller id first
        assert not np.signbit(got.scores[0, :2]).any()
        np.testing.assert_array_equal(got.scores.view(np.int32), want.scores.view(np.int32))  # bit for bit


def test_ragged_nested_lists_name_the_argument() -> None:
    # numpy's own "setting an array element with a sequence" named nothing (adversarial battery)
    with pytest.raises(ValueError, match=r"^items: expected a rectangular array, got a ragged nested list"):
        comirec.aggregate(([[[1, 2], [3]]], [[[1.0, 0.5], [0.2, 0.1]]]))
    with pytest.raises(ValueError, match=r"^scores: expected a rectangular array, got a ragged nested list"):
        comirec.aggregate(([[[1, 2], [3, 4]]], [[[1.0, 0.5], [0.2]]]))
