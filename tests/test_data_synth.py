"""The synthetic generator: labelled, deterministic, protocol-shaped, with planted interests."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from comirec.config import SynthConfig
from comirec.data import TrainSampler, load_prepared, synthesize


def make(tmp_path, name="syn", **kw):
    args = dict(users=3000, items=2000, categories=40, out=str(tmp_path / name), seed=1)
    args.update(kw)
    return synthesize(SynthConfig(**args))  # type: ignore[arg-type]


def test_labelled_and_shaped_like_a_prepared_dataset(tmp_path):
    ds = make(tmp_path)
    assert ds.header["synthetic"] is True and ds.synthetic
    assert "SYNTHETIC" in ds.header["note"] and "SYNTHETIC" in ds.summary() and "synthetic" in repr(ds)
    assert ds.header["source"]["generator"]["users"] == 3000
    assert (ds.n_users, ds.n_items, ds.n_cats) == (3000, 2000, 40)
    lengths = np.diff(ds.indptr)
    assert lengths.min() >= 5 and lengths.max() <= 500
    assert 17 < lengths.mean() < 23  # mean_length 20
    assert ds.items.min() >= 1 and ds.items.max() <= ds.n_items
    assert ds.item_freq[0] == 0 and ds.item_freq.sum() == ds.n_interactions
    np.testing.assert_array_equal(np.bincount(ds.items, minlength=ds.n_items + 1), ds.item_freq)
    assert np.all(np.diff(ds.item_freq[1:]) <= 0)  # ids ranked by frequency
    assert ds.item_cat[0] == -1 and set(np.unique(ds.item_cat[1:])) == set(range(40))
    assert np.bincount(ds.split).tolist() == [2400, 300, 300]
    again = load_prepared(ds.path)
    assert again.header == ds.header


def test_deterministic_per_seed(tmp_path):
    a, b, c = make(tmp_path, "a"), make(tmp_path, "b"), make(tmp_path, "c", seed=2)
    for name in ("indptr", "items", "split", "item_cat", "item_freq", "item_raw"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.items[:1000], c.items[:1000])


def test_users_follow_a_few_planted_interests(tmp_path):
    ds = make(tmp_path, interests_per_user=(2, 3), stickiness=0.8)
    distinct = np.array([len(np.unique(ds.item_cat[ds.sequence(u)])) for u in range(ds.n_users)])
    assert distinct.max() <= 3  # never more categories than interests
    assert (distinct >= 2).mean() > 0.5
    # Sticky sessions: consecutive events share a category far more often than chance.
    same = np.mean([np.mean(np.diff(ds.item_cat[ds.sequence(u)]) == 0) for u in range(500)])
    assert same > 0.8
    # Category popularity is skewed, and so are items within a category.
    cat_events = np.bincount(ds.item_cat[ds.items], minlength=ds.n_cats)
    assert cat_events.max() > 5 * np.median(cat_events)


def test_uniform_settings(tmp_path):
    ds = make(tmp_path, item_skew=0.0, category_skew=0.0, interests_per_user=(1,), stickiness=0.0)
    distinct = np.array([len(np.unique(ds.item_cat[ds.sequence(u)])) for u in range(ds.n_users)])
    assert distinct.max() == 1


def test_streams_across_user_blocks(tmp_path, monkeypatch):
    import comirec.data.synth as synth

    big = make(tmp_path, "one", users=700, items=300, categories=7)
    monkeypatch.setattr(synth, "USER_BLOCK", 100)
    small = make(tmp_path, "many", users=700, items=300, categories=7)
    # Different blocks are different random streams, but the result has the same shape and labels.
    assert small.n_users == big.n_users == 700 and small.synthetic
    assert TrainSampler(small.indptr, small.items, users=small.users("train"), batch_size=64).batch(0).history.shape == (64, 20)


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("users", 0, "users: expected an integer >= 1"),
        ("categories", 5000, r"categories: expected an integer in \[1, items = 2000\]"),
        ("interests_per_user", (3, 2), "interests_per_user"),
        ("mean_length", 2.0, "mean_length"),
        ("stickiness", 1.5, "stickiness"),
        ("split_ratio", (0.9, 0.2, 0.1), "split_ratio"),
    ],
)
def test_bad_options(tmp_path, field, value, match):
    with pytest.raises(ValueError, match=match):
        make(tmp_path, **{field: value})
    assert not (tmp_path / "syn").exists()


def test_config_fields_are_documented():
    for f in dataclasses.fields(SynthConfig):
        assert f.metadata.get("help"), f.name
