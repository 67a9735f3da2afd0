"""The check that a prepared dataset holds what the protocol's specification
(:mod:`comirec.reference.protocol`) expects."""

from __future__ import annotations

from typing import Any

import numpy as np

from comirec.reference.protocol import Expected


def assert_matches(ds: Any, exp: Expected) -> None:
    """The prepared dataset ``ds`` holds exactly what the reference expects (raw ids compared as text)."""
    assert ds.n_users == len(exp.sequences)
    assert ds.n_items == len(exp.item_order)
    assert [str(x) for x in ds.user_raw.tolist()] == [str(u) for u in exp.sequences]
    assert [str(x) for x in ds.item_raw[1:].tolist()] == [str(i) for i in exp.item_order]
    assert ds.item_freq.tolist() == [0] + exp.item_freq
    for u, want in enumerate(exp.sequences.values()):
        got = ds.item_raw[ds.items[ds.indptr[u] : ds.indptr[u + 1]]]
        assert [str(x) for x in got.tolist()] == [str(i) for i in want], f"user {ds.user_raw[u]}"
    assert int(ds.item_cat[0]) == -1
    names = [str(x) for x in ds.cat_raw.tolist()]
    known = [str(c) for c in exp.category_order]
    assert names[: len(known)] == known
    unknown = any(c is None for c in exp.item_category)
    assert len(names) == len(known) + int(unknown)
    got_cats = [names[c] for c in ds.item_cat[1:].tolist()]
    want_cats = [str(c) if c is not None else names[-1] for c in exp.item_category]
    assert got_cats == want_cats
    assert np.all(np.diff(ds.item_freq[1:]) <= 0)
