"""Serving: Recommender.load(run).recommend(...) round-trips with evaluation; raw ids; errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from _models_helpers import make_synth, quick_train  # noqa: E402

import comirec  # noqa: E402
from comirec.serving import Recommender, UnknownItemWarning  # noqa: E402


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("serve")
    ds = make_synth(root / "synth")
    run = quick_train(ds.path, root / "run", dataset=ds, max_steps=40)
    return ds, run, Recommender.load(run)


@pytest.fixture(scope="module")
def served_torch(served):  # type: ignore[no-untyped-def]
    """The same run served by the exact torch index, which masks seen items before its top-n
    (ItemIndex.search(exclude=...)) instead of searching deeper and filtering."""
    from comirec.retrieval import ItemIndex

    ds, run, _ = served
    rec = Recommender.load(run)
    rec.index = ItemIndex(rec.model.item_vectors().detach(), backend="torch", chunk_bytes=4 * rec.n_items * 5)
    assert rec.index.can_exclude
    return ds, run, rec


def user_history(ds, u: int, maxlen: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    seq = ds.items[ds.indptr[u] : ds.indptr[u + 1]]
    return np.asarray(seq[: int(0.8 * len(seq))][-maxlen:], dtype=np.int64)


def test_recommend_matches_brute_force(served) -> None:  # type: ignore[no-untyped-def]
    ds, _run, rec = served
    users = ds.users("test")[:5]
    hists = [user_history(ds, u, rec.maxlen) for u in users]
    out = rec.recommend(hists, n=30, exclude_seen=False)  # what evaluation scores
    assert out.items.shape == out.scores.shape == (5, 30)
    items = rec.model.item_vectors().detach().numpy()
    for j, h in enumerate(hists):
        with torch.no_grad():
            v = rec.model.interests(torch.from_numpy(h)[None], torch.ones(1, len(h)))[0].numpy()
        f = (v @ items.T).max(0)
        order = np.argsort(-f, kind="stable")[:30] + 1
        assert set(out.items[j].tolist()) == set(order.tolist())
        np.testing.assert_allclose(out.scores[j], np.sort(f)[::-1][:30], rtol=1e-5, atol=1e-6)
    one = rec.recommend(hists[0], n=30, exclude_seen=False)  # a single history: 1-D results
    assert one.items.shape == (30,)
    np.testing.assert_array_equal(one.items, out.items[0])


def test_long_histories_keep_the_most_recent_items(served) -> None:  # type: ignore[no-untyped-def]
    ds, _run, rec = served
    h = np.arange(1, 3 * rec.maxlen + 1)
    # the interests come from the last maxlen items (exclude_seen would also drop the older ones)
    np.testing.assert_array_equal(rec.recommend(h, n=10, exclude_seen=False).items,
                                  rec.recommend(h[-rec.maxlen :], n=10, exclude_seen=False).items)
    padded = np.zeros((2, 50), np.int64)  # a 2-D batch: 0 is padding
    padded[0, :3] = [5, 6, 7]
    padded[1, :1] = [9]
    out = rec.recommend(padded, n=10)
    np.testing.assert_array_equal(out.items[0], rec.recommend([5, 6, 7], n=10).items)
    np.testing.assert_array_equal(out.items[1], rec.recommend([9], n=10).items)


def test_lambda_raises_category_diversity(served) -> None:  # type: ignore[no-untyped-def]
    ds, _run, rec = served
    hists = [user_history(ds, u, rec.maxlen) for u in ds.users("test")[:30]]

    def n_cats(lam: float) -> float:
        items = rec.recommend(hists, n=20, lam=lam).items
        return float(np.mean([len(set(ds.item_cat[row[row > 0]].tolist())) for row in items]))

    assert n_cats(0.0) < n_cats(float("inf"))


def test_raw_ids_round_trip(served) -> None:  # type: ignore[no-untyped-def]
    ds, _run, rec = served
    h = user_history(ds, int(ds.users("test")[0]), rec.maxlen)
    internal = rec.recommend(h, n=10)
    raw = rec.recommend(ds.item_raw[h].tolist(), n=10, raw=True)
    assert raw.items.tolist() == ds.item_raw[internal.items].tolist()
    np.testing.assert_array_equal(raw.scores, internal.scores)
    unknown = [10**12, *ds.item_raw[h].tolist(), 10**12 + 1]
    with pytest.warns(UnknownItemWarning, match="2 unknown raw item id"):
        again = rec.recommend(unknown, n=10, raw=True)
    assert again.items.tolist() == raw.items.tolist()
    with pytest.warns(UnknownItemWarning, match="1 unknown"):
        empty = rec.recommend([[10**12]], n=5, raw=True)  # nothing known: still an answer
    assert empty.items.shape == (1, 5)


def test_cold_histories_get_the_most_popular_items(served) -> None:  # type: ignore[no-untyped-def]
    ds, _run, rec = served
    h = user_history(ds, int(ds.users("test")[0]), rec.maxlen)
    warm = rec.recommend(h, n=10, lam=0.1)
    out = rec.recommend([h, [], h], n=10, lam=0.1)  # an empty history inside a batch
    # ids are ranked by descending frequency: the most popular items are 1..n
    freq = np.bincount(ds.items, minlength=rec.n_items + 1)[1:]
    assert np.all(np.diff(freq) <= 0)
    assert out.items[1].tolist() == list(range(1, 11))
    assert np.isnan(out.scores[1]).all()
    for row in (0, 2):  # the other users are not affected
        assert out.items[row].tolist() == warm.items.tolist()
        np.testing.assert_array_equal(out.scores[row], warm.scores)
    with pytest.warns(UnknownItemWarning):
        raw = rec.recommend([[10**12]], n=rec.n_items + 3, raw=True)  # n beyond the catalogue
    assert raw.items[0, : rec.n_items].tolist() == ds.item_raw[1:].tolist()
    assert raw.items[0, rec.n_items :].tolist() == [None] * 3
    assert np.isneginf(raw.scores[0, rec.n_items :]).all()


@pytest.mark.parametrize("which", ["served", "served_torch"])
def test_exclude_seen_filters_the_history_and_still_returns_n(which: str, request: pytest.FixtureRequest) -> None:
    ds, _run, rec = request.getfixturevalue(which)
    users = ds.users("test")[:6]
    # histories longer than maxlen: items before the last maxlen are excluded too
    hists = [np.asarray(ds.items[ds.indptr[u] : ds.indptr[u + 1]], dtype=np.int64) for u in users]
    items = rec.model.item_vectors().detach().numpy()
    for lam in (0.0, 0.5):
        out = rec.recommend(hists, n=25, lam=lam)
        full = rec.recommend(hists, n=25 + max(len(set(h.tolist())) for h in hists), lam=lam, exclude_seen=False)
        for j, h in enumerate(hists):
            got = out.items[j]
            assert (got > 0).all() and len(set(got.tolist())) == 25
            assert not set(got.tolist()) & set(h.tolist())
            if lam == 0.0:  # λ = 0: the unfiltered ranking with the seen items taken out
                want = [i for i in full.items[j].tolist() if i not in set(h.tolist())][:25]
                assert got.tolist() == want
                with torch.no_grad():
                    hh = torch.from_numpy(h[-rec.maxlen :])[None]
                    v = rec.model.interests(hh, torch.ones_like(hh, dtype=torch.float32))[0].numpy()
                f = (v @ items.T).max(0)
                np.testing.assert_allclose(out.scores[j], f[got - 1], rtol=1e-5, atol=1e-6)
    # the raw-id history [a, b]: neither comes back
    h = ds.item_raw[hists[0][-2:]].tolist()
    raw = rec.recommend(h, n=10, raw=True)
    assert not set(raw.items.tolist()) & set(h)
    assert len(set(raw.items.tolist())) == 10 and None not in raw.items.tolist()
    # a history covering the whole catalogue but n items: only those n remain to recommend
    every = np.arange(1, rec.n_items + 1)
    left = rec.recommend(every[3:], n=5)
    assert sorted(left.items[left.items > 0].tolist()) == [1, 2, 3]
    assert (left.items[3:] == -1).all() and np.isneginf(left.scores[3:]).all()


@pytest.mark.parametrize("which", ["served", "served_torch"])
def test_a_history_gets_the_same_list_whatever_its_batch(which: str, request: pytest.FixtureRequest) -> None:
    """With exclude_seen, the aggregation pools each interest's first n unseen items: a user's
    list does not depend on the other histories in the batch (how deep the batch retrieves), and
    at λ > 0 it is comirec.aggregate over exactly that pool."""
    ds, _run, rec = request.getfixturevalue(which)
    users = ds.users("test")[:8]
    hists = [np.asarray(ds.items[ds.indptr[u] : ds.indptr[u + 1]], dtype=np.int64) for u in users]
    hists[3] = hists[3][:2]  # one short history beside long ones: the batch retrieves deeper than it needs
    n = 10
    for lam in (0.0, 0.5):
        batch = rec.recommend(hists, n=n, lam=lam)
        for j, h in enumerate(hists):
            alone = rec.recommend(h, n=n, lam=lam)
            assert batch.items[j].tolist() == alone.items.tolist(), (lam, j)
            np.testing.assert_allclose(batch.scores[j], alone.scores, rtol=1e-6)  # batched matmuls: last-ulp noise
            # the pool: per interest, the first n unseen items of a deep unfiltered retrieval
            emb = rec.embed([h], exclude_seen=False)
            deep = rec.index.search(emb.interests, n + len(set(h.tolist())))
            pool_items = np.full((1, deep.items.shape[1], n), -1, np.int64)
            pool_scores = np.full((1, deep.items.shape[1], n), -np.inf, np.float32)
            for k in range(deep.items.shape[1]):
                keep = [t for t in range(deep.items.shape[2]) if deep.items[0, k, t] not in set(h.tolist())][:n]
                pool_items[0, k, : len(keep)] = deep.items[0, k, keep]
                pool_scores[0, k, : len(keep)] = deep.scores[0, k, keep]
            want = comirec.aggregate((pool_items, pool_scores), rec.item_cat, lam=lam, n=n)
            assert alone.items.tolist() == want.items[0].tolist(), (lam, j)


def test_masked_torch_search_gives_the_lists_of_the_deep_filtered_search(served, served_torch) -> None:  # type: ignore[no-untyped-def]
    ds, _run, rec = served
    _, _, rec_t = served_torch
    assert not rec.index.can_exclude  # faiss: searches n + (most seen items of the batch), then filters
    users = ds.users("test")[:64]
    hists = [np.asarray(ds.items[ds.indptr[u] : ds.indptr[u + 1]], dtype=np.int64) for u in users]
    hists[5] = np.arange(1, rec.n_items + 1)[4:]  # all but four items seen: slots run out
    for lam in (0.0, 0.5):
        a = rec.recommend(hists, n=20, lam=lam)
        b = rec_t.recommend(hists, n=20, lam=lam)
        np.testing.assert_array_equal(a.items, b.items)
        np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5, atol=1e-6)
        assert (b.items[5, 4:] == -1).all() and sorted(b.items[5, :4].tolist()) == [1, 2, 3, 4]


def test_an_empty_history_gets_the_popular_fallback(served) -> None:  # type: ignore[no-untyped-def]
    _ds, _run, rec = served
    one = rec.recommend([], n=7)  # one empty history, as the docstring says: 1-D results
    batch = rec.recommend([[]], n=7)
    assert one.items.shape == (7,) and batch.items.shape == (1, 7)
    assert one.items.tolist() == batch.items[0].tolist() == list(range(1, 8))
    assert np.isnan(one.scores).all()
    assert rec.recommend(np.array([], dtype=np.int64), n=7).items.tolist() == list(range(1, 8))


def test_load_reports_the_retrieval_backend_and_takes_index_options(served, caplog) -> None:  # type: ignore[no-untyped-def]
    import logging

    _ds, run, rec = served
    assert rec.index.backend in ("faiss-cpu", "torch-cpu")
    with caplog.at_level(logging.INFO, logger="comirec.serving"):
        hnsw = Recommender.load(run, factory="HNSW16", ef_search=64)
    assert hnsw.index.backend == "faiss-cpu" and hnsw.index.ef_search == 64
    assert "backend faiss-cpu" in caplog.text and "factory HNSW16" in caplog.text
    with pytest.raises(ValueError, match="^factory: faiss cannot build the index 'IVF,Nope'"):
        Recommender.load(run, factory="IVF,Nope")
    ivf = Recommender.load(run, factory="IVF4,Flat", nprobe=4)  # all lists probed: exact
    h = [3, 9, 27]
    assert ivf.recommend(h, n=10).items.tolist() == rec.recommend(h, n=10).items.tolist()


def test_bad_input(served, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ds, run, rec = served
    with pytest.raises(ValueError, match="n .*>= 1"):
        rec.recommend([1, 2], n=0)
    with pytest.raises(ValueError, match="lam"):
        rec.recommend([1, 2], lam=-1.0)
    with pytest.raises(ValueError, match=f"1..{ds.n_items}"):
        rec.recommend([1, ds.n_items + 1])
    with pytest.raises(TypeError, match="raw=True"):
        rec.recommend([1.5, 2.0])
    with pytest.raises(ValueError, match="not a comirec run directory"):
        Recommender.load(tmp_path)
    (tmp_path / "copy").mkdir()
    for f in ("config.json", "best.pt"):
        (tmp_path / "copy" / f).write_bytes((run / f).read_bytes())
    with pytest.raises(ValueError, match="items.npz"):
        Recommender.load(tmp_path / "copy")


def test_odd_histories_and_a_corrupt_item_table_are_one_line_errors(served, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # found by scripts/adversarial.py: numpy's / Python's raw messages, a BadZipFile naming nothing
    ds, run, rec = served
    with pytest.raises(TypeError, match=r"^histories: expected a sequence of item ids or a batch of sequences, got NoneType$"):
        rec.recommend(None)
    with pytest.raises(ValueError, match=r"^histories\[0\]: expected a flat sequence of item ids, got a nested or ragged list$"):
        rec.recommend([[1, [2, 3]]])
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in ("config.json", "best.pt"):
        (copy / f).write_bytes((run / f).read_bytes())
    (copy / "items.npz").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(ValueError, match=r"items.npz: not a valid item table \(File is not a zip file\); the run directory is corrupt$"):
        Recommender.load(copy)


def test_lazy_public_attribute_and_light_import() -> None:
    assert comirec.Recommender is Recommender
    code = "import sys, comirec; assert 'torch' not in sys.modules and 'faiss' not in sys.modules, sorted(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)


def _tiny_recommender(maxlen: int = 5, n_items: int = 30) -> Recommender:
    from comirec.config import ModelConfig
    from comirec.models import build_model

    torch.manual_seed(0)
    model = build_model(ModelConfig(model="comirec-sa", dim=8, interests=2, maxlen=maxlen), n_items)
    raw = np.array([-1, *range(1000, 1000 + n_items)], dtype=np.int64)
    cats = np.array([-1, *(i % 3 for i in range(n_items))], dtype=np.int32)
    return Recommender(model, {"model": {"maxlen": maxlen}}, raw, cats)


def test_history_packing_matches_a_plain_loop() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    rec = _tiny_recommender()

    @settings(max_examples=60, deadline=None)
    @given(st.lists(st.lists(st.integers(0, 30), max_size=9), min_size=1, max_size=6))
    def check(histories: list[list[int]]) -> None:
        flat, lengths, single = rec._flatten(histories)
        hist, mask, _ids, _owner = rec._windows(flat, lengths, raw=False)
        assert not single
        for row, m, h in zip(hist, mask, histories):
            kept = [i for i in h if i > 0][-rec.maxlen :]  # 0 is padding: dropped
            assert row.tolist() == kept + [0] * (rec.maxlen - len(kept))
            assert m.tolist() == [1.0] * len(kept) + [0.0] * (rec.maxlen - len(kept))

    check()
