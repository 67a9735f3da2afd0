"""Retrieval: exact top-N over real items (ids 1..n, never 0), sorted, -1 for missing, errors raised."""

from __future__ import annotations

import sys

import numpy as np
import pytest

pytest.importorskip("faiss")
torch = pytest.importorskip("torch")

from comirec.retrieval import RESOLVED_BACKENDS, ItemIndex, default_chunk_bytes, resolve_backend  # noqa: E402


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


def test_chunk_bytes_default_follows_the_device_and_bad_values_are_refused(data: tuple[np.ndarray, np.ndarray]) -> None:
    vectors, _ = data
    assert default_chunk_bytes("cpu") == 256 << 20
    if torch.cuda.is_available():  # 2 GiB, or a quarter of the free memory of a small GPU
        assert 256 << 20 <= default_chunk_bytes("cuda") <= 2 << 30
    for bad in (0, -1, 1.5, True, "1MB"):
        with pytest.raises(ValueError, match=r"^chunk_bytes: expected an integer >= 1"):
            ItemIndex(vectors, backend="torch", chunk_bytes=bad)


def test_torch_path_takes_read_only_queries_without_a_warning(data: tuple[np.ndarray, np.ndarray]) -> None:
    # RankStage hands over views of Arrow buffers, which are read-only; torch warns on those
    # (an error under this suite's filterwarnings), so the index copies them first.
    vectors, queries = data
    frozen = queries.copy()
    frozen.flags.writeable = False
    got = ItemIndex(vectors, backend="torch").search(frozen, 5)
    np.testing.assert_array_equal(got.items, brute_force(vectors, queries, 5)[0])


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


def test_product_quantizer_factories_are_accepted_before_d_is_known() -> None:
    """`--index IVF4096,PQ32` is checked before the model's d is known: it must not be refused
    for a dimension it was never meant for (the check once parsed with d = 8)."""
    from comirec.retrieval import check_factory

    check_factory("IVF4096,PQ32", arg="--index")
    check_factory("IVF1024,PQ16x4fs")
    rng = np.random.default_rng(1)
    vectors, queries = rng.normal(size=(2000, 16)).astype(np.float32), rng.normal(size=(5, 2, 16)).astype(np.float32)
    got = ItemIndex(vectors, factory="IVF8,PQ8", nprobe=8).search(queries, 20)
    exact = brute_force(vectors, queries, 20)[0]
    overlap = np.mean([len(set(a) & set(b)) / 20 for a, b in zip(got.items.reshape(-1, 20), exact.reshape(-1, 20))])
    assert overlap > 0.5
    with pytest.raises(ValueError, match="^factory: faiss cannot build 'IVF8,PQ7' for d = 16"):
        ItemIndex(vectors, factory="IVF8,PQ7")


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
    with pytest.raises(ValueError, match=r"^factory: faiss cannot build the index 'NoSuchIndex' \(could not parse") as bad_factory:
        ItemIndex(vectors, factory="NoSuchIndex")
    assert "\n" not in str(bad_factory.value)
    with pytest.raises(ValueError, match=r"^factory: .*'IVF4096,Flat'.*Number of training points"):
        ItemIndex(vectors, factory="IVF4096,Flat")
    with pytest.raises(TypeError, match="numeric"):
        index.search(np.array([["a"] * 8]), 2)


def test_empty_batch(data: tuple[np.ndarray, np.ndarray]) -> None:
    vectors, _ = data
    got = ItemIndex(vectors).search(np.zeros((0, 4, 8), np.float32), 5)
    assert got.items.shape == (0, 4, 5)


def test_backend_names_the_path_that_serves(data: tuple[np.ndarray, np.ndarray]) -> None:
    vectors, queries = data
    assert ItemIndex(vectors).backend == "faiss-cpu"
    assert ItemIndex(vectors, factory="HNSW32").backend == "faiss-cpu"
    assert ItemIndex(vectors, backend="torch").backend == "torch-cpu"
    assert ItemIndex(vectors).describe() == {"backend": "faiss-cpu", "factory": "Flat", "nprobe": 16, "ef_search": None}
    if not torch.cuda.is_available():  # resolution only: no CUDA tensors are made
        assert resolve_backend("Flat", "cuda", "torch") == "torch-cuda"
    import faiss

    if not (hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0):
        assert resolve_backend("Flat", "cuda:0") == "torch-cuda"  # exact on CUDA without a GPU faiss
        assert resolve_backend("IVF4,Flat", "cuda:0") == "faiss-cpu"
    assert set(RESOLVED_BACKENDS) == {"faiss-gpu", "faiss-cpu", "torch-cuda", "torch-cpu"}


def test_without_faiss_exact_falls_back_to_torch_and_others_name_the_extra(
    data: tuple[np.ndarray, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    vectors, queries = data
    monkeypatch.setitem(sys.modules, "faiss", None)  # `import faiss` raises ImportError
    index = ItemIndex(vectors)
    assert index.backend == "torch-cpu"
    np.testing.assert_array_equal(index.search(queries, 5).items, brute_force(vectors, queries, 5)[0])
    for kwargs in ({"factory": "HNSW32"}, {"backend": "faiss"}):
        with pytest.raises(ImportError, match=r"pip install 'comirec\[cpu\]'.*'comirec\[gpu\]'"):
            ItemIndex(vectors, **kwargs)


def test_nprobe_and_ef_search_reach_the_faiss_index(data: tuple[np.ndarray, np.ndarray]) -> None:
    import faiss

    vectors, queries = data
    ivf = ItemIndex(vectors, factory="IVF8,Flat", nprobe=3)
    assert faiss.extract_index_ivf(ivf._index).nprobe == 3
    hnsw = ItemIndex(vectors, factory="HNSW16", ef_search=77)
    assert hnsw._index.hnsw.efSearch == 77
    # more lists probed finds at least as many exact neighbours
    exact = brute_force(vectors, queries, 10)[0]

    def overlap(index: ItemIndex) -> float:
        got = index.search(queries, 10).items
        return float(np.mean([len(set(a) & set(b)) for a, b in zip(got.reshape(-1, 10), exact.reshape(-1, 10))]))

    assert overlap(ItemIndex(vectors, factory="IVF8,Flat", nprobe=8)) >= overlap(ItemIndex(vectors, factory="IVF8,Flat", nprobe=1))
    assert overlap(ItemIndex(vectors, factory="IVF8,Flat", nprobe=8)) == 10.0  # all lists: exact
    with pytest.raises(ValueError, match="^ef_search: only HNSW"):
        ItemIndex(vectors, factory="IVF8,Flat", ef_search=10)
    with pytest.raises(ValueError, match="^ef_search: only HNSW"):
        ItemIndex(vectors, ef_search=10, backend="torch")
    for bad in (0, -1, True, 2.5):
        with pytest.raises(ValueError, match="^nprobe: expected an integer >= 1"):
            ItemIndex(vectors, factory="IVF8,Flat", nprobe=bad)


@pytest.mark.parametrize("chunk_bytes", [None, 4 * 300 * 2])  # one block; blocks of 2 query rows (K = 3 per user)
def test_torch_exclude_equals_brute_force_without_those_items(data: tuple[np.ndarray, np.ndarray], chunk_bytes: int | None) -> None:
    vectors, queries = data  # 300 items; 7 users x 3 interests
    rng = np.random.default_rng(1)
    rows = np.concatenate([rng.integers(0, 7, 60), np.full(296, 4)])  # user 4 sees all but 4 items
    ids = np.concatenate([rng.integers(1, 301, 60), np.arange(5, 301)])
    got = ItemIndex(vectors, backend="torch", chunk_bytes=chunk_bytes).search(queries, 10, exclude=(rows, ids))
    s = queries @ vectors.T
    for b in range(7):
        banned = set(ids[rows == b].tolist())
        for k in range(3):
            order = [i + 1 for i in np.argsort(-s[b, k], kind="stable") if i + 1 not in banned][:10]
            want = order + [-1] * (10 - len(order))
            assert got.items[b, k].tolist() == want, (b, k)
            np.testing.assert_allclose(got.scores[b, k, : len(order)], s[b, k, np.array(order) - 1], rtol=1e-5, atol=1e-5)
            assert np.isneginf(got.scores[b, k, len(order) :]).all()


def test_exclude_is_refused_where_it_cannot_apply_and_checked(data: tuple[np.ndarray, np.ndarray]) -> None:
    vectors, queries = data
    one = (np.array([0]), np.array([1]))
    with pytest.raises(ValueError, match=r"^exclude: the faiss-cpu index cannot leave items out"):
        ItemIndex(vectors).search(queries, 5, exclude=one)
    index = ItemIndex(vectors, backend="torch")
    for bad, msg in (((np.array([7]), np.array([1])), r"rows must be query rows in 0\.\.6"),
                     ((np.array([0]), np.array([301])), r"items must be item ids in 1\.\.300"),
                     ((np.array([0]), np.array([0])), r"items must be item ids in 1\.\.300"),
                     ((np.array([0, 1]), np.array([1])), r"expected two 1-D integer arrays of equal length"),
                     ((np.array([0.5]), np.array([1])), r"expected two 1-D integer arrays of equal length")):
        with pytest.raises(ValueError, match="^exclude: " + msg):
            index.search(queries, 5, exclude=bad)
    with pytest.raises(TypeError, match=r"^exclude: expected a pair"):
        index.search(queries, 5, exclude=3)  # type: ignore[arg-type]
    empty = index.search(queries, 5, exclude=(np.empty(0, np.int64), np.empty(0, np.int64)))
    np.testing.assert_array_equal(empty.items, brute_force(vectors, queries, 5)[0])
