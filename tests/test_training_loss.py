"""The sampled softmax loss against dense-softmax computations on a tiny catalogue, and its sampler."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from comirec.losses import LogUniformSampler, Negatives, SampledSoftmaxLoss, full_softmax_loss, make_loss, sampled_softmax_from_logits  # noqa: E402

N, D, B = 40, 8, 16


def setup(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    weight = torch.randn(N + 1, D, generator=g, dtype=torch.float64)
    user = torch.randn(B, D, generator=g, dtype=torch.float64)
    target = torch.randint(1, N + 1, (B,), generator=g)
    return user, target, weight


def dense_sampled_loss(user, target, weight, neg_ids, log_q):  # type: ignore[no-untyped-def]
    """The same loss written on the dense (B, N) logit matrix with a membership mask."""
    logits = user @ weight[1:].T - log_q[None, :]  # log_q: (N,) for every item
    member = torch.zeros(B, N, dtype=torch.bool)
    member[:, neg_ids - 1] = True
    member[torch.arange(B), target - 1] = True  # the true class, and no duplicate of it
    masked = logits.masked_fill(~member, -math.inf)
    return (torch.logsumexp(masked, 1) - logits[torch.arange(B), target - 1]).mean()


def test_sampled_loss_equals_dense_masked_softmax() -> None:
    user, target, weight = setup()
    loss_fn = SampledSoftmaxLoss(N, num_sampled=12)
    neg = loss_fn.draw(np.random.default_rng(3))
    assert neg.ids.unique().numel() == 12
    w = weight[torch.cat([target, neg.ids])]
    got = loss_fn.loss(user, target, w[:B], neg, w[B:])
    log_q = loss_fn.sampler.log_expected_count(torch.arange(1, N + 1), neg.num_tries)
    torch.testing.assert_close(neg.log_q.double(), log_q[neg.ids - 1].float().double())
    expect = dense_sampled_loss(user, target, weight, neg.ids, log_q)
    torch.testing.assert_close(got, expect, rtol=1e-6, atol=1e-6)  # neg.log_q is float32
    # The same generator state draws the same negatives (exact resumes depend on it).
    again = loss_fn.draw(np.random.default_rng(3))
    assert torch.equal(again.ids, neg.ids) and again.num_tries == neg.num_tries


def test_accidental_hits_are_removed() -> None:
    user, target, weight = setup()
    loss_fn = SampledSoftmaxLoss(N, num_sampled=5)
    ids = torch.tensor([3, 9, 17, 20, 33])
    target = target.clone()
    target[0] = 9  # row 0's target is among the negatives: that negative must not count for row 0
    neg = Negatives(ids, 30, torch.from_numpy(loss_fn.sampler.log_expected_count(ids.numpy(), 30)))
    w = weight[torch.cat([target, ids])]
    got = loss_fn.loss(user, target, w[:B], neg, w[B:])
    log_q = loss_fn.sampler.log_expected_count(torch.arange(1, N + 1), 30)
    torch.testing.assert_close(got, dense_sampled_loss(user, target, weight, ids, log_q))
    kept = SampledSoftmaxLoss(N, num_sampled=5, remove_accidental_hits=False).loss(user, target, w[:B], neg, w[B:])
    assert kept > got


def test_sampled_loss_with_the_whole_catalogue_is_the_full_softmax() -> None:
    user, target, weight = setup()
    assert SampledSoftmaxLoss(N, num_sampled=N).exact and make_loss("full", N, 1).exact
    assert not make_loss("sampled", N, N - 1).exact
    full = torch.nn.functional.cross_entropy(user @ weight[1:].T, target - 1)
    torch.testing.assert_close(full_softmax_loss(user, target, weight), full)
    with pytest.raises(ValueError, match="unknown loss"):
        make_loss("bpr", N, 1)


def test_log_uniform_probabilities() -> None:
    s = LogUniformSampler(N)
    p = s.prob(torch.arange(1, N + 1))
    torch.testing.assert_close(p.sum(), torch.tensor(1.0, dtype=torch.float64))
    assert (p[:-1] > p[1:]).all()  # frequency-ranked ids: id 1 is the most likely
    draws = s.draw(200_000, np.random.default_rng(0))
    assert draws.min() >= 1 and draws.max() <= N  # never the padding id 0
    freq = np.bincount(draws, minlength=N + 1)[1:] / draws.size
    np.testing.assert_allclose(freq, p.numpy(), atol=3e-3, rtol=0.05)
    np.testing.assert_allclose(s.prob(np.arange(1, N + 1)), p.numpy())


def test_unique_sampling_and_expected_counts() -> None:
    s = LogUniformSampler(N)
    rng = np.random.default_rng(1)
    hits = np.zeros(N + 1)
    q = np.zeros(N + 1)
    runs = 3000
    for _ in range(runs):
        ids, tries = s.sample_unique(10, rng)
        assert ids.size == 10 and np.unique(ids).size == 10 and tries >= 10
        hits[ids] += 1
        q[1:] += np.exp(s.log_expected_count(np.arange(1, N + 1), tries))
    # TF's Q(i) = 1 - (1 - p_i)^num_tries approximates the inclusion probability of each id.
    np.testing.assert_allclose(hits[1:] / runs, q[1:] / runs, atol=0.03, rtol=0.1)


def test_sampler_errors() -> None:
    with pytest.raises(ValueError, match="num_sampled"):
        LogUniformSampler(10).sample_unique(10, np.random.default_rng(0))
    with pytest.raises(ValueError, match="num_sampled"):
        SampledSoftmaxLoss(10, 0)


def test_sampled_softmax_training_lowers_the_full_softmax_loss() -> None:
    # A consistency check: descending the sampled loss descends the true objective.
    user, target, weight = setup()
    user = user.float().requires_grad_(True)
    weight = weight.float().requires_grad_(True)
    loss_fn = SampledSoftmaxLoss(N, num_sampled=10)
    opt = torch.optim.Adam([user, weight], lr=0.05)
    rng = np.random.default_rng(0)
    start = float(full_softmax_loss(user, target, weight).detach())
    for _ in range(200):
        opt.zero_grad()
        neg = loss_fn.draw(rng)
        w = weight[torch.cat([target, neg.ids])]
        loss_fn.loss(user, target, w[:B], neg, w[B:]).backward()
        opt.step()
    assert float(full_softmax_loss(user, target, weight).detach()) < 0.5 * start


def test_max_readout_scores_each_item_by_its_best_interest() -> None:
    from comirec.losses import full_softmax_loss

    g = torch.Generator().manual_seed(3)
    user, weight = torch.randn(5, 3, 8, generator=g), torch.randn(21, 8, generator=g)
    target = torch.tensor([1, 4, 9, 20, 2])
    logits = torch.stack([(user[:, k] @ weight[1:].T) for k in range(3)]).amax(0)  # (B, n_items)
    expected = torch.nn.functional.cross_entropy(logits, target - 1)
    torch.testing.assert_close(full_softmax_loss(user, target, weight), expected)
    # Training's one path (batch_loss) with the whole catalogue: this full softmax, max readout.
    from comirec.models import ComiRecSA
    from comirec.training import batch_loss

    torch.manual_seed(0)
    model = ComiRecSA(20, dim=8, n_interests=3, maxlen=4)
    history = torch.tensor([[1, 2, 0, 0], [3, 4, 5, 6], [7, 0, 0, 0], [8, 9, 10, 0], [11, 12, 13, 14]])
    mask = (history > 0).float()
    for loss_fn in (make_loss("full", 20, 1), SampledSoftmaxLoss(20, 20)):
        got = batch_loss(model, loss_fn, history, mask, target, np.random.default_rng(0), readout="max")
        want = full_softmax_loss(model.interests(history, mask), target, model.item_emb.weight)
        torch.testing.assert_close(got, want)


def test_logit_scale_multiplies_every_training_logit_and_changes_no_ranking() -> None:
    # ComiRec-SA's --logit-scale s: the training loss is the full softmax of s x (interest . item),
    # with either readout; the interests a trained model retrieves with are the unscaled ones.
    from comirec.losses import full_softmax_loss
    from comirec.models import ComiRecSA, select_interest
    from comirec.training import batch_loss

    history = torch.tensor([[1, 2, 0, 0], [3, 4, 5, 6], [7, 0, 0, 0], [8, 9, 10, 0], [11, 12, 13, 14]])
    mask = (history > 0).float()
    target = torch.tensor([1, 4, 9, 20, 2])
    for s in (0.5, 3.0):
        torch.manual_seed(0)
        plain = ComiRecSA(20, dim=8, n_interests=3, maxlen=4)
        torch.manual_seed(0)
        scaled = ComiRecSA(20, dim=8, n_interests=3, maxlen=4, logit_scale=s)
        with torch.no_grad():
            v = plain.interests(history, mask)
            torch.testing.assert_close(scaled.interests(history, mask), v, rtol=0, atol=0)
        for readout in ("max", "hard"):
            got = batch_loss(scaled, make_loss("full", 20, 1), history, mask, target, np.random.default_rng(0), readout=readout)
            user = v if readout == "max" else select_interest(v, scaled.item_emb.weight[target])
            want = full_softmax_loss(s * user, target, scaled.item_emb.weight)
            torch.testing.assert_close(got, want)
            unscaled = batch_loss(plain, make_loss("full", 20, 1), history, mask, target, np.random.default_rng(0), readout=readout)
            assert abs(got.item() - unscaled.item()) > 1e-3  # the scale did reach the loss
    with pytest.raises(ValueError, match="logit_scale"):
        ComiRecSA(20, dim=8, logit_scale=0.0)
    with pytest.raises(ValueError, match="logit_scale"):
        ComiRecSA(20, dim=8, logit_scale=float("inf"))


def test_max_readout_sampled_logits() -> None:
    g = torch.Generator().manual_seed(4)
    loss = SampledSoftmaxLoss(200, 30)
    user, weight = torch.randn(4, 3, 8, generator=g), torch.randn(201, 8, generator=g)
    target = torch.tensor([1, 50, 7, 199])
    neg = loss.draw(np.random.default_rng(0))
    got = loss.loss(user, target, weight[target], neg, weight[neg.ids])
    # Per row, the K = 3 candidates' logits: the best interest for each item.
    true = (user * weight[target].unsqueeze(1)).sum(-1).amax(1)
    sampled = (user @ weight[neg.ids].T).amax(1)
    hits = neg.ids.unsqueeze(0) == target.unsqueeze(1)
    log_q_true = loss.sampler.log_expected_count(target, neg.num_tries)
    expected = sampled_softmax_from_logits(true, sampled, log_q_true, neg.log_q, hits)
    torch.testing.assert_close(got, expected)


def test_sparse_items_resume_exactly_and_refuse_what_they_cannot_do(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """--sparse-items (SparseAdam on the item table, Adam elsewhere): a resumed run ends
    bit-identical to an uninterrupted one, and the combinations it cannot honour are refused
    naming the option."""
    import dataclasses

    from comirec.config import ModelConfig, SynthConfig, TrainConfig
    from comirec.data import synthesize
    from comirec.training import resume_config, train

    data = tmp_path / "wide"
    synthesize(SynthConfig(users=400, items=2000, categories=10, out=str(data), seed=2))
    mc = ModelConfig(model="comirec-sa", interests=2, dim=16)
    base = TrainConfig(data=str(data), out=str(tmp_path / "full"), max_steps=20, eval_every=10, batch_size=32,
                       threads=1, patience=100, progress=False, sparse_items=True)
    train(mc, base)
    train(mc, dataclasses.replace(base, out=str(tmp_path / "cut"), max_steps=10))
    train(mc, dataclasses.replace(base, out=str(tmp_path / "cut"), resume=True))
    a = torch.load(tmp_path / "full" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "cut" / "last.pt", weights_only=True)
    assert a["step"] == b["step"] == 20
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    with pytest.raises(ValueError, match="sparse_items"):
        TrainConfig(data=str(data), out="x", loss="full", sparse_items=True)
    with pytest.raises(ValueError, match="sparse_items"):
        TrainConfig(data=str(data), out="x", weight_decay=0.1, sparse_items=True)
    with pytest.raises(ValueError, match="sparse_items"):  # a sparse run is not resumed as a dense one
        resume_config(tmp_path / "full", mc, dataclasses.replace(base, sparse_items=False, resume=True), given={"sparse_items"})
    with pytest.raises(ValueError, match="sparse_items"):  # 10 x 256 negatives cover the 2,000 items
        train(mc, dataclasses.replace(base, out=str(tmp_path / "exact"), batch_size=256))


def test_final_eval_users_bounds_the_evaluation_after_training(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """--final-eval-users N: the best model is evaluated on the first N valid and test users (a
    dataset of millions of users would otherwise spend most of a short run there), and
    metrics.json says so."""
    import json

    from comirec.config import ModelConfig, SynthConfig, TrainConfig
    from comirec.data import synthesize
    from comirec.training import train

    data = tmp_path / "syn"
    synthesize(SynthConfig(users=400, items=500, categories=10, out=str(data), seed=2))
    cfg = TrainConfig(data=str(data), out=str(tmp_path / "run"), max_steps=10, eval_every=10, batch_size=32, threads=1,
                      progress=False, final_eval_users=7)
    train(ModelConfig(model="youtube-dnn", dim=16), cfg)
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["final_eval_users"] == 7
    from comirec.data import load_prepared
    from comirec.evaluation import evaluate_model, report_to_json
    from comirec.runs import load_model

    model, _ = load_model(tmp_path / "run", "cpu")
    ds = load_prepared(str(data))
    for split in ("valid", "test"):
        first7 = report_to_json(evaluate_model(model, ds, split=split, ns=(20, 50), protocols=("standard",), max_users=7))
        every = report_to_json(evaluate_model(model, ds, split=split, ns=(20, 50), protocols=("standard",)))
        assert m[split]["standard"] == first7["standard"] != every["standard"]
    with pytest.raises(ValueError, match="final_eval_users"):
        TrainConfig(data=str(data), out="x", final_eval_users=-1)
