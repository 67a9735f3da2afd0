"""Filtering, ordering, id remapping and user splits (SPEC section 2) on generated logs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from protocol_check import assert_matches

from comirec.reference.protocol import reference_protocol

from comirec.config import PrepareConfig
from comirec.data import DataFormatError, prepare
from comirec.data.protocol import draw_split

rows_strategy = st.lists(
    st.tuples(st.integers(0, 12), st.integers(0, 15), st.integers(0, 5), st.integers(0, 3)), min_size=1, max_size=150
)


def write_log(path: Path, rows: list[tuple[int, int, int, int]]) -> Path:
    path.write_text("user_id,item_id,timestamp,cat\n" + "".join(f"{u},{i},{t},c{c}\n" for u, i, t, c in rows))
    return path


def prep(tmp: Path, name: str, **kw: object):
    args: dict = dict(format="csv", input=str(tmp / "log.csv"), out=str(tmp / name), category_col="cat")
    args.update(kw)
    return prepare(PrepareConfig(**args))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=rows_strategy, min_item=st.integers(1, 4), min_user=st.integers(1, 4), kcore=st.booleans())
def test_protocol_matches_reference(tmp_path_factory, rows, min_item, min_user, kcore):
    tmp = tmp_path_factory.mktemp("p")
    write_log(tmp / "log.csv", rows)
    exp = reference_protocol([(u, i, t, f"c{c}") for u, i, t, c in rows], min_item, min_user, kcore)
    if not exp.sequences:
        with pytest.raises(DataFormatError, match="no interactions left after filtering"):
            prep(tmp, "out", min_item_count=min_item, min_user_count=min_user, kcore=kcore)
        assert not (tmp / "out").exists()
        return
    ds = prep(tmp, "out", min_item_count=min_item, min_user_count=min_user, kcore=kcore)
    assert_matches(ds, exp)
    if kcore:  # a true k-core: every kept item and user meets its threshold
        assert ds.item_freq[1:].min() >= min_item
        assert np.diff(ds.indptr).min() >= min_user


def test_one_pass_filter_keeps_items_that_fall_below_after_user_filtering(tmp_path):
    # Item 9 has 5 interactions, but 4 come from users that the user filter drops.
    rows = [(u, 1, t, 0) for u in range(5) for t in range(5)]  # users 0-4: 5 x item 1
    rows += [(u, 9, 9, 0) for u in range(5, 9)] + [(0, 9, 10, 0)]  # users 5-8: one event each
    write_log(tmp_path / "log.csv", rows)
    one = prep(tmp_path, "one")
    assert one.n_items == 2 and one.item_freq.tolist() == [0, 25, 1]  # kept, as the authors do
    core = prep(tmp_path, "core", kcore=True)
    assert core.n_items == 1 and core.header["stats"]["raw"]["filter_rounds"] == 2


def test_stable_time_sort_and_frequency_tie_break(tmp_path):
    # Equal timestamps keep the file order; items 7 and 3 tie on frequency: 7 appears first.
    rows = [(1, 7, 5, 0), (1, 3, 5, 0), (1, 8, 1, 0), (1, 3, 9, 0), (1, 7, 0, 0)]
    write_log(tmp_path / "log.csv", rows)
    ds = prep(tmp_path, "out", min_item_count=1, min_user_count=1)
    assert ds.item_raw[1:].tolist() == [7, 3, 8]
    assert ds.item_raw[ds.sequence(0)].tolist() == [7, 8, 7, 3, 3]


@pytest.mark.parametrize("n", [1, 2, 9, 10, 11, 1000, 22363])
def test_split_sizes_follow_the_authors_arithmetic(n):
    split = draw_split(n, 1230)
    train, valid = int(n * 0.8), int(n * 0.9) - int(n * 0.8)
    assert np.bincount(split, minlength=3).tolist() == [train, valid, n - train - valid]
    np.testing.assert_array_equal(split, draw_split(n, 1230))
    if n > 100:
        assert not np.array_equal(split, draw_split(n, 1231))


def test_split_ratio_and_seed_options(tmp_path):
    rng = np.random.default_rng(0)
    rows = [(int(u), int(i), int(t), 0) for u, i, t in zip(rng.integers(0, 300, 6000), rng.integers(0, 20, 6000), range(6000))]
    write_log(tmp_path / "log.csv", rows)
    a = prep(tmp_path, "a", seed=3)
    b = prep(tmp_path, "b", seed=3)
    c = prep(tmp_path, "c", seed=4, split_ratio=(0.5, 0.25, 0.25))
    np.testing.assert_array_equal(a.split, b.split)
    n = a.n_users
    assert np.bincount(c.split).tolist() == [int(n * 0.5), int(n * 0.75) - int(n * 0.5), n - int(n * 0.75)]
    assert a.users("train").dtype == np.int64 and len(a.users("valid")) == int(n * 0.9) - int(n * 0.8)
    with pytest.raises(ValueError, match="split_ratio"):
        prep(tmp_path, "d", split_ratio=(0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="split: expected one of train, valid, test"):
        a.users("validation")


def test_split_file(tmp_path):
    rows = [(u, i, t, 0) for u in range(10) for t, i in enumerate(range(u % 3, u % 3 + 6))]
    write_log(tmp_path / "log.csv", rows)
    names = ["train", "valid", "test"]
    lines = [f"{u}\t{names[u % 3]}" for u in range(10)] + ["999\ttest"]  # 999: not in the data
    (tmp_path / "split.tsv").write_text("user_id\tsplit\n" + "\n".join(lines) + "\n")
    ds = prep(tmp_path, "a", split_file=str(tmp_path / "split.tsv"), min_item_count=1)
    assert [names[s] for s in ds.split] == [names[int(u) % 3] for u in ds.user_raw]
    assert ds.header["protocol"]["split"] == {"file": str(tmp_path / "split.tsv")}
    # No header line, comma-separated: the same split.
    (tmp_path / "split.csv").write_text("\n".join(line.replace("\t", ",") for line in lines) + "\n")
    ds2 = prep(tmp_path, "b", split_file=str(tmp_path / "split.csv"), min_item_count=1)
    np.testing.assert_array_equal(ds.split, ds2.split)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("0\ttrain\n1\ttrain\n", r"split-bad.tsv: 8 of the 10 users .* are not in the split file"),
        ("user\tsplit\n" + "".join(f"{u}\ttrain\n" for u in range(9)) + "9\tholdout\n", r"line 11, column 2: expected train, valid or test, got 'holdout'"),
        ("".join(f"{u}\ttrain\n" for u in range(10)) + "3\ttest\n", r"user 3 is listed more than once"),
    ],
)
def test_split_file_errors(tmp_path, content, match):
    rows = [(u, i, t, 0) for u in range(10) for t, i in enumerate(range(6))]
    write_log(tmp_path / "log.csv", rows)
    (tmp_path / "split-bad.tsv").write_text(content)
    with pytest.raises(DataFormatError, match=match):
        prep(tmp_path, "out", split_file=str(tmp_path / "split-bad.tsv"))
    assert not (tmp_path / "out").exists()
