"""The real datasets in ../shared (skipped with a reason when absent): Amazon Beauty and ml-100k."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from protocol_check import assert_matches

from comirec.reference.protocol import reference_protocol

from comirec.config import PrepareConfig
from comirec.data import TrainSampler, eval_batches, prepare


@pytest.fixture(scope="module")
def beauty(beauty_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("beauty") / "ds"
    return prepare(PrepareConfig(format="sequences", input=str(beauty_dir), out=str(out)))


def test_beauty_statistics_match_the_readme(beauty):
    # shared/data/amazon-beauty/README.md: 22,363 users, 12,101 items, 198,502 interactions,
    # median 6 per user, already 5-core; the (cat_top, cat_l2) pair gives 47 categories.
    assert (beauty.n_users, beauty.n_items, beauty.n_interactions, beauty.n_cats) == (22363, 12101, 198502, 47)
    raw = beauty.header["stats"]["raw"]
    assert (raw["users_before_filter"], raw["items_before_filter"], raw["events_before_filter"]) == (22363, 12101, 198502)
    assert raw["items_without_category"] == 0
    assert beauty.header["stats"]["median_length"] == 6.0
    assert np.bincount(beauty.split).tolist() == [17890, 2236, 2237]  # int(0.8 n), int(0.9 n) - int(0.8 n), rest


def test_beauty_sequences_are_the_lines_in_order(beauty, beauty_dir):
    lines = (beauty_dir / "Beauty.txt").read_text().split("\n")
    seqs = {int(parts[0]): [int(x) for x in parts[1:]] for parts in (ln.split() for ln in lines if ln.strip())}
    assert beauty.user_raw.dtype == np.int64 and beauty.item_raw.dtype == np.int64
    for u in range(0, beauty.n_users, 97):
        assert beauty.item_raw[beauty.sequence(u)].tolist() == seqs[int(beauty.user_raw[u])]


def test_beauty_split_file_reproduces_the_given_split(beauty_dir, tmp_path):
    split_file = beauty_dir / "split-seed1230.tsv"
    ds = prepare(
        PrepareConfig(format="sequences", input=str(beauty_dir / "Beauty.txt"), out=str(tmp_path / "ds"),
                      categories=str(beauty_dir / "Beauty_item_category.DERIVED.tsv"), split_file=str(split_file))
    )  # fmt: skip
    assert np.bincount(ds.split).tolist() == [17890, 2236, 2237]
    with open(split_file) as f:
        given = {int(row[0]): row[1] for row in csv.reader(f, delimiter="\t") if row[0] != "user_id"}
    names = ("train", "valid", "test")
    assert all(names[s] == given[int(u)] for u, s in zip(ds.user_raw.tolist(), ds.split.tolist()))
    assert ds.n_cats == 47


def test_beauty_sampler_and_eval_batches(beauty):
    sampler = TrainSampler(beauty.indptr, beauty.items, users=beauty.users("train"), batch_size=128, maxlen=20, seed=0)
    b = sampler.batch(0)
    assert b.history.shape == (128, 20) and (b.target >= 1).all() and (b.target <= beauty.n_items).all()
    assert set(b.users.tolist()) <= set(beauty.users("train").tolist())
    test = beauty.users("test")
    n = sum(len(e.users) for e in eval_batches(beauty.indptr, beauty.items, test, maxlen=20, batch_size=1000))
    assert n == len(test) == 2237


def test_ml100k_matches_the_reference_protocol(ml100k_dir, tmp_path):
    ds = prepare(PrepareConfig(format="movielens", input=str(ml100k_dir), out=str(tmp_path / "ml")))
    with open(ml100k_dir / "ml-100k.inter") as f:
        rows = [(int(r[0]), int(r[1]), float(r[3]), None) for r in csv.reader(f, delimiter="\t") if not r[0].startswith("user_id")]
    with open(ml100k_dir / "ml-100k.item") as f:
        side = [(int(r[0]), r[3].split()[0]) for r in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
                if not r[0].startswith("item_id") and r[3].strip()]  # fmt: skip
    # shared/data/movielens-100k/README.md: 100,000 rows, 943 users, 1,682 items, 19 genres.
    assert len(rows) == 100_000 and len({r[0] for r in rows}) == 943 and len({r[1] for r in rows}) == 1682
    raw = ds.header["stats"]["raw"]
    assert (raw["rows_read"], raw["users_before_filter"], raw["items_before_filter"]) == (100_000, 943, 1682)
    assert_matches(ds, reference_protocol(rows, 5, 5, side=side))
    assert ds.n_cats <= 19
