"""Interop: torch tensors (any device/dtype, requires_grad), faiss results, ranx / pandas / dict
inputs to metrics, and metrics_to_ranx."""

from __future__ import annotations

import numpy as np
import pytest

import comirec
from comirec import reference


@pytest.fixture
def cands() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    items = rng.integers(1, 60, size=(20, 4, 12))
    # scores exactly representable in bfloat16 (8 significant bits): the upcast is exact
    scores = np.sort(rng.integers(0, 256, size=(20, 4, 12)).astype(np.float32) / 256, axis=2)[:, :, ::-1].copy()
    cats = np.concatenate([[-1], rng.integers(0, 6, size=60)])
    return items, scores, cats


def _same(a: comirec.Candidates, b: comirec.Candidates) -> None:
    np.testing.assert_array_equal(a.items, b.items)
    np.testing.assert_array_equal(a.scores, b.scores)


def test_aggregate_takes_torch_tensors_of_any_dtype(cands) -> None:  # type: ignore[no-untyped-def]
    torch = pytest.importorskip("torch")
    items, scores, cats = cands
    want = reference.aggregate((items, scores), cats, lam=0.2, n=10)
    s = torch.from_numpy(scores)
    for t_scores in (s.clone().requires_grad_(True), s.to(torch.bfloat16), s.to(torch.float16), s.double()):
        got = comirec.aggregate((torch.from_numpy(items).int(), t_scores), torch.from_numpy(cats), lam=0.2, n=10)
        _same(got, want)
    # a list works too
    _same(comirec.aggregate((items.tolist(), scores.tolist()), cats.tolist(), lam=0.2, n=10), want)


def test_aggregate_takes_cuda_tensors(cands) -> None:  # type: ignore[no-untyped-def]
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device here")
    items, scores, cats = cands
    got = comirec.aggregate((torch.from_numpy(items).cuda(), torch.from_numpy(scores).cuda().bfloat16()), cats, lam=0.2, n=10)
    _same(got, reference.aggregate((items, scores), cats, lam=0.2, n=10))


def test_swapped_pair_and_flat_faiss_shapes_name_the_fix(cands) -> None:  # type: ignore[no-untyped-def]
    items, scores, _ = cands
    with pytest.raises(TypeError, match=r"got \(scores, items\).*comirec.from_search\(D, I, k=K\)"):
        comirec.aggregate((scores, items))
    with pytest.raises(ValueError, match=r"^items: expected a 3-D .*comirec.from_search\(D, I, k=K\)"):
        comirec.aggregate((items.reshape(80, 12), scores.reshape(80, 12)))
    with pytest.raises(TypeError, match=r"from_search\(D, I, k\)"):
        comirec.from_search(items.reshape(80, 12), scores.reshape(80, 12), k=4)
    with pytest.raises(ValueError, match="^k: the 80 query rows"):
        comirec.from_search(scores.reshape(80, 12), items.reshape(80, 12), k=3)


def test_from_search_reshapes_a_faiss_result() -> None:
    faiss = pytest.importorskip("faiss")
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(50, 8)).astype(np.float32)
    interests = rng.normal(size=(6, 3, 8)).astype(np.float32)  # B = 6 users, K = 3
    index = faiss.IndexFlatIP(8)
    index.add(vectors)
    D, I = index.search(interests.reshape(18, 8), 5)  # noqa: E741
    c = comirec.from_search(D, I, k=3)
    assert c.items.shape == c.scores.shape == (6, 3, 5)
    for b in range(6):  # user b's interest k is query row b*K + k
        for k in range(3):
            exact = np.argsort(-(vectors @ interests[b, k]), kind="stable")[:5]
            assert c.items[b, k].tolist() == exact.tolist()
    out = comirec.aggregate(c, n=7)
    want = reference.aggregate((I.reshape(6, 3, 5), D.reshape(6, 3, 5)), n=7)
    _same(out, want)


@pytest.fixture
def ranking() -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(5)
    recs = np.stack([rng.permutation(np.arange(1, 40))[:10] for _ in range(12)])
    targets = [rng.choice(np.arange(1, 40), size=int(rng.integers(0, 5)), replace=False) for _ in range(12)]
    cats = np.concatenate([[-1], rng.integers(0, 4, size=39)])
    return recs, targets, cats


def test_metrics_takes_dicts_dataframes_and_ranx(ranking) -> None:  # type: ignore[no-untyped-def]
    recs, targets, cats = ranking
    want = comirec.metrics(recs, targets, cats, ks=(5, 10), per_user=True)
    users = [f"u{i}" for i in range(len(recs))][::-1]  # keys in any order: matched by key

    def check(got: dict[str, np.ndarray]) -> None:
        assert set(got) == set(want)
        for key in want:
            np.testing.assert_array_equal(got[key], want[key])

    rec_dict = {u: r.tolist() for u, r in zip(users, recs)}
    tgt_dict = {u: t.tolist() for u, t in zip(users, targets) if len(t)}  # users without targets: absent
    check(comirec.metrics(rec_dict, dict(reversed(list(tgt_dict.items()))), cats, ks=(5, 10), per_user=True))
    pd = pytest.importorskip("pandas")
    rows = [(u, int(i), float(-rank)) for u, r in zip(users, recs) for rank, i in enumerate(r)]
    rdf = pd.DataFrame(rows, columns=["user", "item", "score"]).sample(frac=1.0, random_state=0)  # order by score
    rdf = rdf.set_index(np.arange(len(rdf)))
    first_seen = list(dict.fromkeys(rdf["user"].tolist()))
    tdf = pd.DataFrame([(u, int(i)) for u, t in zip(users, targets) for i in t], columns=["user", "item"])
    got = comirec.metrics(rdf, tdf, cats, ks=(5, 10), per_user=True)
    perm = [users.index(u) for u in first_seen]  # per-user arrays follow the users' first appearance
    for key in want:
        np.testing.assert_array_equal(got[key], want[key][perm])
    ranx = pytest.importorskip("ranx")
    run = ranx.Run({u: {str(i): float(len(r) - rank) for rank, i in enumerate(r)} for u, r in zip(users, recs)})
    qrels = ranx.Qrels({u: {str(i): 1 for i in t} for u, t in zip(users, targets) if len(t)})
    got = comirec.metrics(run, qrels, cats, ks=(5, 10), per_user=True)
    perm = [users.index(u) for u in run.to_dict()]  # per-user arrays follow the Run's query order
    for key in want:
        np.testing.assert_array_equal(got[key], want[key][perm])


def test_keyed_input_errors(ranking) -> None:  # type: ignore[no-untyped-def]
    recs, targets, _ = ranking
    with pytest.raises(TypeError, match="^recs: item ids must be integers .* 'abc'"):
        comirec.metrics({"u": ["3", "abc"]}, {"u": [3]}, ks=2)
    with pytest.raises(TypeError, match="^targets: keyed targets"):
        comirec.metrics(recs, {0: [1]})
    with pytest.raises(ValueError, match="^targets: no user of recs is in targets"):
        comirec.metrics({1: [2, 3]}, {"1": [2]}, ks=2)
    pd = pytest.importorskip("pandas")
    with pytest.raises(ValueError, match=r"^recs: a DataFrame needs 'user' and 'item' columns"):
        comirec.metrics(pd.DataFrame({"uid": [1], "iid": [2]}), {1: [2]}, ks=1)


@pytest.mark.slow  # ranx compiles its numba kernels on first use (20-50 s)
def test_metrics_to_ranx_agrees_with_ranx(ranking) -> None:  # type: ignore[no-untyped-def]
    ranx = pytest.importorskip("ranx")
    recs, targets, _ = ranking
    qrels, run = comirec.metrics_to_ranx(recs, targets)
    assert len(qrels.keys()) == sum(1 for t in targets if len(t))  # users without targets left out
    ours = comirec.metrics(recs, targets, ks=(5, 10))
    theirs = ranx.evaluate(qrels, run, ["recall@5", "ndcg@5", "hit_rate@5", "recall@10", "ndcg@10", "hit_rate@10"])
    for k in (5, 10):
        assert ours[f"recall@{k}"] == pytest.approx(theirs[f"recall@{k}"], abs=1e-9)
        assert ours[f"ndcg@{k}"] == pytest.approx(theirs[f"ndcg@{k}"], abs=1e-9)
        assert ours[f"hitrate@{k}"] == pytest.approx(theirs[f"hit_rate@{k}"], abs=1e-9)
    # and back: metrics reads what metrics_to_ranx wrote
    again = comirec.metrics(run, qrels, ks=(5, 10))
    for key, value in ours.items():
        assert again[key] == pytest.approx(value, abs=1e-12)
