"""Evaluation: retrieval + aggregation + metrics, checked against a brute-force computation."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from _models_helpers import make_synth, quick_train  # noqa: E402

from comirec.data import eval_batches  # noqa: E402
from comirec.evaluation import evaluate_model, format_report, report_to_json  # noqa: E402
from comirec.runs import load_model  # noqa: E402


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("eval")
    ds = make_synth(root / "synth")
    run = quick_train(ds.path, root / "run", model="comirec-dr", dataset=ds, max_steps=60, eval_every=30)
    model, _ = load_model(run)
    return ds, model


def brute_force_recall(ds, model, split: str, n: int, per_user: bool = False):  # type: ignore[no-untyped-def]
    """Standard Recall@n and HitRate@n with f(u, i) = max_k <v_k, e_i> over the whole catalogue."""
    items = model.item_vectors().detach().numpy()
    recalls, hits = [], []
    for eb in eval_batches(ds.indptr, ds.items, users=ds.users(split), maxlen=model.maxlen, batch_size=500):
        with torch.no_grad():
            v = model.interests(torch.from_numpy(eb.history), torch.from_numpy(eb.mask)).numpy()
        f = (v @ items.T).max(axis=1)  # (b, n_items)
        top = np.argsort(-f, axis=1, kind="stable")[:, :n] + 1
        for j in range(len(eb.users)):
            truth = set(eb.target_items[eb.target_indptr[j] : eb.target_indptr[j + 1]].tolist())
            got = len(truth & set(top[j].tolist()))
            recalls.append(got / len(truth))
            hits.append(got > 0)
    if per_user:
        return np.array(recalls), np.array(hits, dtype=float)
    return float(np.mean(recalls)), float(np.mean(hits))


def test_matches_brute_force(trained) -> None:  # type: ignore[no-untyped-def]
    ds, model = trained
    rep = evaluate_model(model, ds, split="test", ns=(20, 50), maxlen=model.maxlen, stderr=True)
    for n in (20, 50):
        recall, hitrate = brute_force_recall(ds, model, "test", n, per_user=True)
        got = rep["standard"][0.0]
        assert got[f"recall@{n}"] == pytest.approx(recall.mean(), abs=1e-9)
        assert got[f"hitrate@{n}"] == pytest.approx(hitrate.mean(), abs=1e-9)
        assert got[f"recall@{n}_se"] == pytest.approx(recall.std(ddof=1) / np.sqrt(len(recall)), rel=1e-6)
    assert "recall@20_se" not in evaluate_model(model, ds, split="test", ns=(20,), maxlen=model.maxlen)["standard"][0.0]


def test_per_user_metrics_average_to_the_report(trained) -> None:  # type: ignore[no-untyped-def]
    from comirec.evaluation import per_user_metrics

    ds, model = trained
    rep = evaluate_model(model, ds, split="test", ns=(50,), protocols=("comirec",), maxlen=model.maxlen)
    arrays = per_user_metrics(model, ds, split="test", n=50, protocol="comirec", maxlen=model.maxlen, batch_size=50)
    assert all(len(v) == len(ds.users("test")) for v in arrays.values())
    for key, value in rep["comirec"][0.0].items():
        assert np.mean(arrays[key]) == pytest.approx(value, abs=1e-12)
    recall, _ = brute_force_recall(ds, model, "test", 50, per_user=True)
    np.testing.assert_allclose(per_user_metrics(model, ds, n=50, maxlen=model.maxlen)["recall@50"], recall, atol=1e-12)


def test_several_lambdas_share_one_retrieval(trained) -> None:  # type: ignore[no-untyped-def]
    ds, model = trained
    rep = evaluate_model(model, ds, split="valid", ns=(50,), lams=(0.0, 0.1, math.inf), protocols=("standard", "comirec"), maxlen=model.maxlen)
    alone = evaluate_model(model, ds, split="valid", ns=(50,), lams=(0.1,), maxlen=model.maxlen)
    assert rep["standard"][0.1] == alone["standard"][0.1]
    div = [rep["standard"][lam]["diversity@50"] for lam in (0.0, 0.1, math.inf)]
    assert div[0] < div[1] <= div[2]
    assert rep["standard"][math.inf]["recall@50"] <= rep["standard"][0.0]["recall@50"]
    assert set(report_to_json(rep)["comirec"]) == {"0.0", "0.1", "inf"}
    text = format_report(rep, "title")
    assert "protocol: comirec" in text and "recall@50" in text


def test_max_users_and_batching_do_not_change_means(trained) -> None:  # type: ignore[no-untyped-def]
    ds, model = trained
    a = evaluate_model(model, ds, split="test", ns=(20,), maxlen=model.maxlen, batch_size=37)
    b = evaluate_model(model, ds, split="test", ns=(20,), maxlen=model.maxlen, batch_size=4096)
    assert a["standard"][0.0] == pytest.approx(b["standard"][0.0], abs=1e-12)
    few = evaluate_model(model, ds, split="test", ns=(20,), maxlen=model.maxlen, max_users=10)
    recall10 = brute_force_recall_subset(ds, model, 10)
    assert few["standard"][0.0]["recall@20"] == pytest.approx(recall10, abs=1e-9)


def brute_force_recall_subset(ds, model, n_users: int) -> float:  # type: ignore[no-untyped-def]
    class Sub:
        indptr, items = ds.indptr, ds.items

        @staticmethod
        def users(split: str) -> np.ndarray:
            return ds.users(split)[:n_users]

    return brute_force_recall(Sub, model, "test", 20)[0]


def test_bad_arguments(trained) -> None:  # type: ignore[no-untyped-def]
    ds, model = trained
    with pytest.raises(ValueError, match="lam"):
        evaluate_model(model, ds, lams=(-0.1,))
    with pytest.raises(ValueError, match="lam"):
        evaluate_model(model, ds, lams=(float("nan"),))
    with pytest.raises(ValueError, match="n .*>= 1"):
        evaluate_model(model, ds, ns=(0,))
    with pytest.raises(ValueError, match="split"):
        evaluate_model(model, ds, split="dev")
    with pytest.raises(ValueError, match="protocol"):
        evaluate_model(model, ds, protocols=("recbole",))
