"""Models: shapes, masks (padding never changes the interests), routing details, readout."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from comirec.config import ModelConfig  # noqa: E402
from comirec.models import MODEL_NAMES, MULTI_INTEREST, MostPopular, build_model, dynamic_routing, model_class, select_interest, squash  # noqa: E402

N_ITEMS, B, T, D, K = 50, 6, 8, 16, 3
TRAINABLE = [m for m in MODEL_NAMES if m != "mostpop"]


def make_batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([1, 2, 3, 5, T, T])
    hist = torch.randint(1, N_ITEMS + 1, (B, T), generator=g)
    mask = (torch.arange(T)[None, :] < lengths[:, None]).float()
    return hist * mask.long(), mask


def model(name: str, **kw: object):  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    return build_model(ModelConfig(model=name, dim=D, interests=K, maxlen=T, **kw), N_ITEMS).eval()  # type: ignore[arg-type]


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_shapes(name: str) -> None:
    hist, mask = make_batch()
    v = model(name).interests(hist, mask)
    k = K if name in MULTI_INTEREST else 1
    d = 1 if name == "mostpop" else D
    assert v.shape == (B, k, d)
    assert torch.isfinite(v).all()
    assert model(name).item_vectors().shape == (N_ITEMS, d)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_padding_ids_never_change_interests(name: str) -> None:
    hist, mask = make_batch()
    m = model(name)
    garbage = torch.randint(1, N_ITEMS + 1, hist.shape, generator=torch.Generator().manual_seed(9))
    hist2 = torch.where(mask.bool(), hist, garbage)
    with torch.no_grad():
        assert torch.equal(m.interests(hist, mask), m.interests(hist2, mask))


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_trailing_padding_columns_never_change_interests(name: str) -> None:
    # The same users with histories cut to 5 columns (all their real items fit): same interests.
    hist, mask = make_batch()
    m = model(name)
    keep = mask.sum(1) <= 5
    with torch.no_grad():
        full = m.interests(hist[keep], mask[keep])
        short = m.interests(hist[keep][:, :5], mask[keep][:, :5])
    torch.testing.assert_close(full, short, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_rows_are_independent(name: str) -> None:
    hist, mask = make_batch()
    m = model(name)
    with torch.no_grad():
        together = m.interests(hist, mask)
        alone = torch.cat([m.interests(hist[i : i + 1], mask[i : i + 1]) for i in range(B)])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-6)


def test_history_of_one_repeated_item_gives_that_item() -> None:
    # SA's attention sums to 1 over real positions and the positional embedding enters the
    # attention only: every interest is exactly the item's embedding, whatever the length.
    hist, mask = make_batch()
    hist = (mask * 7).long()
    for name in ("comirec-sa",):
        m = model(name)
        with torch.no_grad():
            m.pos_emb.normal_()
            v = m.interests(hist, mask)
        expect = m.item_emb.weight[7].expand(B, K, D)
        torch.testing.assert_close(v, expect)
    m = model("youtube-dnn")
    with torch.no_grad():
        torch.testing.assert_close(m.interests(hist, mask)[:, 0], m.proj(m.item_emb.weight[7]).expand(B, D))


def test_gru_state_is_taken_at_the_true_length() -> None:
    hist, mask = make_batch()
    m = model("gru4rec")
    with torch.no_grad():
        v = m.interests(hist, mask)[:, 0]
        for i in range(B):
            n = int(mask[i].sum())
            _, h = m.gru(m.item_emb(hist[i : i + 1, :n]))
            torch.testing.assert_close(v[i], h[0, 0], rtol=1e-5, atol=1e-6)


def test_squash_length() -> None:
    s = torch.randn(10, 4, 16) * torch.logspace(-2, 2, 10)[:, None, None]
    n = s.norm(dim=-1)
    torch.testing.assert_close(squash(s).norm(dim=-1), n**2 / (1 + n**2), rtol=1e-4, atol=1e-7)
    assert torch.equal(squash(torch.zeros(2, 3)), torch.zeros(2, 3))


def test_one_routing_iteration_is_a_uniform_coupling() -> None:
    hat = torch.randn(2, K, T, D)
    mask = torch.ones(2, T)
    mask[1, 4:] = 0
    v = dynamic_routing(hat, mask, torch.zeros(2, K, T), iters=1)
    expect = squash((hat * mask[:, None, :, None]).sum(2) / K)
    torch.testing.assert_close(v, expect)


def test_routing_gradient_flows_through_the_last_pass_only() -> None:
    # With the couplings of the earlier iterations stop-gradient'ed, the output is linear in
    # hat through s = sum_t c_t hat_t with c constant: d<v, g>/d hat_t is c_t times one vector.
    hat = torch.randn(1, K, T, D, requires_grad=True)
    mask = torch.ones(1, T)
    mask[0, 6:] = 0
    v = dynamic_routing(hat, mask, torch.zeros(1, K, T), iters=3)
    (v * torch.randn_like(v)).sum().backward()
    g = hat.grad[0]  # (K, T, D)
    assert torch.equal(g[:, 6:], torch.zeros_like(g[:, 6:]))  # padded positions: no gradient
    for k in range(K):
        ratios = g[k, :6] / g[k, :6].norm(dim=-1, keepdim=True)
        torch.testing.assert_close(ratios, ratios[:1].expand_as(ratios), rtol=1e-4, atol=1e-5)


def test_comirec_dr_uses_a_map_per_position_and_interest() -> None:
    m = model("comirec-dr", dr_map="position")  # the authors' ComiRec-DR
    assert m.bilinear.shape == (T, D, K * D)
    hist, mask = make_batch()
    with torch.no_grad():
        before = m.interests(hist, mask)
        m.bilinear[T - 1].normal_()  # only users with a full history see position T-1
        after = m.interests(hist, mask)
    full = mask.sum(1) == T
    assert torch.equal(before[~full], after[~full])
    assert not torch.allclose(before[full], after[full])


def test_mind_random_logits_in_training_fixed_in_eval() -> None:
    m = model("mind")
    hist, mask = make_batch()
    with torch.no_grad():
        a, b = m.interests(hist, mask), m.interests(hist, mask)
        assert torch.equal(a, b)
        m.train()
        torch.manual_seed(1)
        c = m.interests(hist, mask)
        torch.manual_seed(1)
        d = m.interests(hist, mask)
        e = m.interests(hist, mask)
    assert torch.equal(c, d)
    assert not torch.equal(d, e)
    assert (a >= 0).all()  # the ReLU projection (authors' Books setting)
    assert (model("mind", mind_relu=False).interests(hist, mask) < 0).any()


def test_select_interest_picks_the_best_matching_interest() -> None:
    v = torch.randn(5, K, D)
    t = torch.randn(5, D)
    picked = select_interest(v, t)
    best = torch.einsum("bkd,bd->bk", v, t).argmax(1)
    torch.testing.assert_close(picked, v[torch.arange(5), best])
    assert torch.equal(select_interest(v[:, :1], t), v[:, 0])


def test_one_table_for_input_and_output() -> None:
    for name in TRAINABLE:
        m = model(name)
        assert m.item_vectors().data_ptr() == m.item_emb.weight[1:].data_ptr()


def test_mostpop_counts_training_users_only() -> None:
    indptr = np.array([0, 3, 5, 9])
    items = np.array([1, 2, 2, 3, 3, 4, 4, 4, 4], dtype=np.int32)
    m = MostPopular(4).fit_sequences(indptr, items, np.array([0, 1]))
    np.testing.assert_array_equal(m.item_vectors()[:, 0].numpy(), [1, 2, 2, 0])
    hist, mask = make_batch()
    assert m.interests(hist[:, :1].clamp(max=4), mask[:, :1]).shape == (B, 1, 1)
    with pytest.raises(ValueError, match="counts"):
        m.fit_counts(np.zeros(3))


def test_build_model_errors() -> None:
    with pytest.raises(ValueError, match="unknown model 'sasrec'.*comirec-sa"):
        ModelConfig(model="sasrec")
    with pytest.raises(ValueError, match="interests"):
        ModelConfig(model="comirec-sa", interests=0)
    with pytest.raises(ValueError, match="n_items"):
        build_model(ModelConfig(model="comirec-sa"), 0)
    m = model("comirec-sa")
    with pytest.raises(ValueError, match="maxlen"):
        m.interests(torch.ones(2, T + 1, dtype=torch.long), torch.ones(2, T + 1))
    with pytest.raises(ValueError, match="history and mask"):
        m.interests(torch.ones(2, T, dtype=torch.long), torch.ones(2, T - 1))


@pytest.mark.parametrize("name", TRAINABLE)
def test_empty_history_is_finite(name: str) -> None:
    m = model(name)
    v = m.interests(torch.zeros(2, T, dtype=torch.long), torch.zeros(2, T))
    assert torch.isfinite(v).all()


# -- options behind the defaults (docs/models.md, "Why the defaults differ from the authors'") --


def test_right_align_moves_the_most_recent_item_to_the_last_position() -> None:
    from comirec.models.base import right_align

    hist, mask = make_batch()
    emb = hist.unsqueeze(-1).float().expand(B, T, 2)
    his_r, mask_r = right_align(emb, mask)
    for b in range(B):
        n = int(mask[b].sum())
        assert mask_r[b].tolist() == [0.0] * (T - n) + [1.0] * n
        assert his_r[b, T - n :, 0].tolist() == hist[b, :n].float().tolist()
        assert (his_r[b, : T - n] == 0).all()


@pytest.mark.parametrize("name, kw", [
    ("comirec-dr", dict(align="right")), ("comirec-dr", dict(align="right", dr_map="position")), ("comirec-sa", dict(align="right")),
    ("comirec-dr", dict(dr_map="interest")), ("comirec-dr", dict(dr_map="shared")), ("comirec-dr", dict(dr_init="glorot")),
    ("comirec-sa", dict(pos_init="zero")), ("comirec-sa", dict(pos_init="zero", align="right")),
])
def test_model_options_keep_the_padding_invariances(name: str, kw: dict) -> None:  # type: ignore[type-arg]
    hist, mask = make_batch()
    m = model(name, **kw)
    garbage = torch.randint(1, N_ITEMS + 1, hist.shape, generator=torch.Generator().manual_seed(9))
    keep = mask.sum(1) <= 5
    with torch.no_grad():
        v = m.interests(hist, mask)
        assert v.shape == (B, K, D) and torch.isfinite(v).all()
        assert torch.equal(v, m.interests(torch.where(mask.bool(), hist, garbage), mask))
        torch.testing.assert_close(v[keep], m.interests(hist[keep][:, :5], mask[keep][:, :5]), rtol=1e-5, atol=1e-6)


def test_right_alignment_gives_the_most_recent_item_the_same_map_whatever_the_length() -> None:
    # The same last item (7) after zero or three older items. Right alignment: only the map of the
    # last position is non-zero, and item 7 alone goes through it for both histories. Left
    # alignment: only the map of position 0 is non-zero, which sees 7 in one history and 3 in the other.
    one = (torch.tensor([[7] + [0] * (T - 1)]), torch.tensor([[1.0] + [0.0] * (T - 1)]))
    four = (torch.tensor([[3, 4, 5, 7] + [0] * (T - 4)]), torch.tensor([[1.0] * 4 + [0.0] * (T - 4)]))
    for align, position, same in (("right", T - 1, True), ("left", 0, False)):
        m = model("comirec-dr", align=align, dr_map="position")
        with torch.no_grad():
            m.bilinear.zero_()
            m.bilinear[position] = torch.randn(D, K * D, generator=torch.Generator().manual_seed(1))
            a, b = m.interests(*one), m.interests(*four)
        assert float(a.norm()) > 0
        assert torch.allclose(a, b, atol=1e-6) is same, align


def test_dr_maps_per_option() -> None:
    assert model("comirec-dr", dr_map="position").bilinear.shape == (T, D, K * D)
    assert model("comirec-dr").bilinear.shape == (1, D, D)  # the default (docs/models.md)
    assert model("comirec-dr", dr_map="interest").bilinear.shape == (1, D, K * D)
    assert model("comirec-dr", dr_map="shared").bilinear.shape == (1, D, D)
    assert float(model("comirec-dr", dr_map="position").bilinear.detach().std()) == pytest.approx(1.0, rel=0.05)  # the authors' N(0, 1)
    assert float(model("comirec-dr", dr_map="position", dr_init="glorot").bilinear.detach().abs().max()) <= (6 / (D + K * D)) ** 0.5
    with pytest.raises(ValueError, match="dr_map"):
        model("comirec-dr", dr_map="diagonal")
    with pytest.raises(ValueError, match="align"):
        model("comirec-sa", align="middle")


def test_sa_positional_embedding_init() -> None:
    # glorot-uniform over (maxlen, d) as the authors; zero: the attention starts from the items alone
    glorot = model("comirec-sa").pos_emb.detach()
    assert float(glorot.abs().max()) <= (6 / (T + D)) ** 0.5 and float(glorot.std()) > 0.3 * (6 / (T + D)) ** 0.5
    zero = model("comirec-sa", pos_init="zero")
    assert torch.equal(zero.pos_emb.detach(), torch.zeros(T, D)) and zero.pos_emb.requires_grad
    hist, mask = make_batch()
    # with zero positions, permuting a full history's items permutes nothing in the interests
    full = mask.sum(1) == T
    perm = torch.randperm(T, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        v, w = zero.interests(hist[full], mask[full]), zero.interests(hist[full][:, perm], mask[full])
    torch.testing.assert_close(v, w, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="pos_init"):
        model("comirec-sa", pos_init="normal")


def test_stored_configs_without_the_new_fields_load_as_the_authors_models() -> None:
    from comirec.config import ModelConfig

    old = ModelConfig.from_stored({"model": "comirec-dr", "dim": 8, "interests": 2, "maxlen": 5, "routing_iters": 3, "mind_relu": True})
    assert (old.dr_map, old.dr_init, old.align, old.readout) == ("position", "normal", "left", "hard")
    assert ModelConfig.from_stored({"model": "comirec-sa"}).pos_init == "glorot"
    assert ModelConfig.from_stored({"model": "comirec-sa"}).logit_scale == 1.0  # the authors' logits
    with pytest.raises(ValueError, match="logit_scale must be a finite number > 0"):
        ModelConfig(model="comirec-sa", logit_scale=-1.0)
    assert ModelConfig.from_stored({"model": "comirec-dr", "readout": "max"}).readout == "max"


def test_readout_auto_is_max_for_comirec_sa_and_dr_and_runs_store_what_they_trained_with() -> None:
    from comirec.config import ModelConfig

    assert ModelConfig(model="comirec-sa").training_readout == "max"
    assert ModelConfig(model="comirec-dr").training_readout == "max"
    assert ModelConfig(model="mind").training_readout == "hard"
    assert ModelConfig(model="comirec-sa", readout="hard").training_readout == "hard"
    assert ModelConfig(model="comirec-dr").resolved().readout == "max"
    assert ModelConfig.from_stored({"model": "comirec-sa"}).training_readout == "hard"  # runs written before readout existed
    # "auto" was stored only before ComiRec-DR's auto became max: it keeps its meaning of then
    assert ModelConfig.from_stored({"model": "comirec-dr", "readout": "auto"}).training_readout == "hard"
    assert ModelConfig.from_stored({"model": "comirec-sa", "readout": "auto"}).training_readout == "max"
    assert ModelConfig.from_stored({"model": "comirec-dr", "readout": "max"}).training_readout == "max"


def test_a_new_run_stores_its_resolved_readout_and_resumes_with_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from _models_helpers import make_synth, quick_train
    from comirec.config import ModelConfig, TrainConfig
    from comirec.training import resume_config

    data = tmp_path / "ds"
    make_synth(data, users=200, items=100, categories=4)
    run = quick_train(data, tmp_path / "run", model="comirec-dr", max_steps=4, eval_every=2)
    assert json.loads((run / "config.json").read_text())["model"]["readout"] == "max"
    mcfg, _ = resume_config(run, ModelConfig(model="comirec-dr", dim=16, interests=4, maxlen=12),
                            TrainConfig(data=str(data), out=str(run), resume=True), given={"readout"})
    assert mcfg.training_readout == "max"


def test_gru4rec_dropout_acts_in_training_only_and_other_models_refuse_it() -> None:
    torch.manual_seed(0)
    plain, dropped = build_model(ModelConfig(model="gru4rec", dim=8), 30), build_model(ModelConfig(model="gru4rec", dim=8, dropout=0.5), 30)
    dropped.load_state_dict(plain.state_dict())  # dropout has no parameters: same weights
    ids = torch.tensor([[3, 4, 5, 0], [7, 8, 0, 0]])
    mask = (ids > 0).float()
    for m in (plain, dropped):
        m.eval()
    torch.testing.assert_close(dropped.interests(ids, mask), plain.interests(ids, mask))  # eval: no dropout
    dropped.train()
    plain.train()
    assert not torch.allclose(dropped.interests(ids, mask), plain.interests(ids, mask))
    # dropout 0 is the model without it, draw for draw
    torch.manual_seed(1)
    a = build_model(ModelConfig(model="gru4rec", dim=8, dropout=0.0), 30).train()
    torch.manual_seed(1)
    b = model_class("gru4rec")(30, dim=8).train()
    torch.testing.assert_close(a.interests(ids, mask), b.interests(ids, mask))
    for name in ("youtube-dnn", "mind", "comirec-dr", "comirec-sa"):
        with pytest.raises(ValueError, match=f"dropout: model {name} takes no dropout"):
            build_model(ModelConfig(model=name, dim=8, dropout=0.2), 30)
