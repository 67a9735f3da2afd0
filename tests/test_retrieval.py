"""Retrieval: exact top-N over real items (ids 1..n, never 0), sorted, -1 for missing, errors raised."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("faiss")
torch = pytest.importorskip("torch")

from comirec.retrieval import ItemIndex  # noqa: E402


def brute_force(vectors: np.ndarray, queries: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    s = queries @ vectors.T  # (B, K, n_items)
    order = np.argsort(-s, axis=-1, kind="stable")[..., :n]
    return order + 1, np.take_along_axis(s, order, -1)


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(300, 8)).astype(np.float32), rng.normal(size=(7, 3, 8)).astype(np.float32)


@pytest.mark.parametrize("backend", ["faiss", "torch"])
def test_exact_search_matches_brute_force(data: tuple[np.ndarray, np.ndarray], backend: str) -> None:
    vectors, queries = data
    got = ItemIndex(vectors, backend=backend).search(queries, 20)
    items, scores = brute_force(vectors, queries, 20)
    assert got.items.shape == got.scores.shape == (7, 3, 20)
    assert got.items.dtype == np.int64 and got.scores.dtype == np.float32
    np.testing.assert_array_equal(got.items, items)
    np.testing.assert_allclose(got.scores, scores, rtol=1e-5, atol=1e-5)
    assert (np.diff(got.scores, axis=-1) <= 0).all()
    assert got.items.min() >= 1  # the padding id never comes back


def test_torch_path_chunks_the_score_matrix(data: tuple[np.ndarray, np.ndarray]) -> None:
    vectors, queries = data
    small = ItemIndex(vectors, backend="torch", chunk_bytes=4 * 300 * 2).search(queries, 5)
    np.testing.assert_array_equal(small.items, brute_force(vectors, queries, 5)[0])


@pytest.mark.parametrize("backend", ["faiss", "torch"])
def test_more_slots_than_items_are_empty(backend: str) -> None:
    vectors = np.eye(3, dtype=np.float32)
    got = ItemIndex(vectors, backend=backend).search(np.array([[1.0, 0.5, 0.0]], np.float32), 5)
    np.testing.assert_array_equal(got.items[0, 0], [1, 2, 3, -1, -1])
    assert np.isneginf(got.scores[0, 0, 3:]).all()
    assert got.items.shape == (1, 1, 5)  # 2-D queries are K = 1


def test_approximate_indexes_find_most_neighbours(data: tuple[np.ndarray, np.ndarray]) -> None:
    vectors, queries = data
    exact = brute_force(vectors, queries, 10)[0]
    for factory in ("HNSW32", "IVF4,Flat"):
        got = ItemIndex(vectors, factory=factory, nprobe=4).search(queries, 10)
        overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got.items.reshape(-1, 10), exact.reshape(-1, 10))])
        assert overlap > 0.9, factory


def test_torch_tensors_are_accepted(data: tuple[np.ndarray, np.ndarray]) -> None:
    vectors, queries = data
    got = ItemIndex(torch.from_numpy(vectors)).search(torch.from_numpy(queries), 3)
    np.testing.assert_array_equal(got.items, brute_force(vectors, queries, 3)[0])


def test_errors_are_raised(data: tuple[np.ndarray, np.ndarray]) -> None:
    vectors, queries = data
    index = ItemIndex(vectors)
    with pytest.raises(ValueError, match="n .* >= 1"):
        index.search(queries, 0)
    with pytest.raises(ValueError, match=r"\(B, K, 8\)"):
        index.search(queries[..., :4], 5)
    bad = queries.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        index.search(bad, 5)
    with pytest.raises(ValueError, match="NaN"):
        ItemIndex(np.full((3, 2), np.nan, np.float32))
    with pytest.raises(ValueError, match="2-D"):
        ItemIndex(np.zeros((0, 4), np.float32))
    with pytest.raises(ValueError, match="backend"):
        ItemIndex(vectors, backend="annoy")
    with pytest.raises(ValueError, match="exact only"):
        ItemIndex(vectors, backend="torch", factory="HNSW32")
    with pytest.raises(ValueError, match=r"^index: faiss cannot build 'NoSuchIndex' .*could not parse"):  # one line, no C++ frame
        ItemIndex(vectors, factory="NoSuchIndex")
    with pytest.raises(ValueError, match=r"^index: .*'IVF4096,Flat'.*Number of training points"):
        ItemIndex(vectors, factory="IVF4096,Flat")
    with pytest.raises(TypeError, match="numeric"):
        index.search(np.array([["a"] * 8]), 2)


def test_empty_batch(data: tuple[np.ndarray, np.ndarray]) -> None:
    vectors, _ = data
    got = ItemIndex(vectors).search(np.zeros((0, 4, 8), np.float32), 5)
    assert got.items.shape == (0, 4, 5)
